import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { deploymentFromEnv } from '../core/deployment.ts';
import type { Progress } from '../core/ports/task-deps.ts';
export { METRIC_NAMESPACE, TASK_DIMENSION_SETS, APPROVAL_DIMENSION_SETS } from '../core/metrics.ts';
import { METRIC_NAMESPACE } from '../core/metrics.ts';

/** The Powertools trio for one function: structured logs, embedded metrics, and traced AWS clients. */
export function telemetry(env: NodeJS.ProcessEnv = process.env) {
  const serviceName = deploymentFromEnv(env).name;
  return {
    logger: new Logger({ serviceName }),
    metrics: new Metrics({ namespace: METRIC_NAMESPACE, serviceName }),
    tracer: new Tracer({ serviceName, enabled: Boolean(env.AWS_LAMBDA_FUNCTION_NAME) && env.POWERTOOLS_TRACE_ENABLED !== 'false' }),
  };
}

/**
 * Progress as a structured log line (migration id, machine and phase on every line) and as
 * embedded metrics: `Done` (rows or docs so far, a gauge) and, when a throttle held the task,
 * `ThrottledSeconds`, each published at once with both dimension sets.
 */
export function progressReporter(machine: string, t: Pick<ReturnType<typeof telemetry>, 'logger' | 'metrics'>): (p: Progress) => void {
  return (p) => {
    if (p.warning) {
      t.logger.warn(p.warning, { migrationId: p.migrationId, machine, phase: p.phase });
      return;
    }
    t.logger.info(p.note ?? p.phase, { migrationId: p.migrationId, machine, phase: p.phase, done: p.done, total: p.total, unit: p.unit, throttle: p.throttle, waitSeconds: p.waitSeconds, knobs: p.knobs });
    const metric = t.metrics.singleMetric();
    metric.setDefaultDimensions({ Machine: machine });
    metric.addDimensions({ MigrationId: p.migrationId });
    metric.addDimensions({});
    if (p.throttle) metric.addMetric('ThrottledSeconds', MetricUnit.Seconds, p.waitSeconds ?? 0);
    metric.addMetric('Done', MetricUnit.Count, Number(p.done));
  };
}
