import { SSMClient } from '@aws-sdk/client-ssm';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { AwsApprovals } from '../adapters/approvals-aws.ts';
import { telemetry } from '../adapters/telemetry.ts';
import { deploymentFromEnv } from '../core/deployment.ts';

const { logger, metrics, tracer } = telemetry();
const approvals = new AwsApprovals(tracer.captureAWSv3Client(new SSMClient({})), undefined, deploymentFromEnv().ssmRoot);

/** The hours the oldest pending approval has waited, among those given. */
export function oldestPendingHours(pending: readonly { since: Date | undefined }[], now: number): number {
  const ages = pending.map((p) => (p.since ? (now - p.since.getTime()) / 3_600_000 : 0));
  return ages.length ? Math.max(...ages) : 0;
}

/** Runs on a schedule: publishes how long this deployment's oldest pending approval has waited, for the alarm. */
export async function handler(): Promise<{ pending: number; oldestHours: number }> {
  const pending = await approvals.pending();
  const oldestHours = oldestPendingHours(pending, Date.now());
  metrics.addMetric('OldestPendingApprovalHours', MetricUnit.NoUnit, oldestHours);
  metrics.addMetric('PendingApprovals', MetricUnit.Count, pending.length);
  metrics.publishStoredMetrics();
  logger.info('pending approvals', { pending: pending.map((p) => `${p.migrationId}/${p.step}`), oldestHours });
  return { pending: pending.length, oldestHours };
}
