import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import type { FerryConfig } from './config.ts';
import type { MigrationStateMachine } from './state-machines.ts';
import type { Deployment } from '../lambdas/core/deployment.ts';
import { METRIC_NAMESPACE, TASK_DIMENSION_SETS } from '../lambdas/core/metrics.ts';

export interface ObservabilityProps {
  readonly config: FerryConfig;
  readonly deployment: Deployment;
  readonly key: kms.IKey;
  readonly machines: readonly MigrationStateMachine[];
  /** Log groups of the task functions, for the phase table. */
  readonly taskLogGroups: readonly logs.ILogGroup[];
}

/**
 * A dashboard (rows or docs per minute, time throttled, phase of each migration) and the alarms an
 * on-call operator needs: an execution failed, a machine throttled too long, an approval waiting too long.
 */
export class Observability extends Construct {
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly topic: sns.Topic;

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    const { config, deployment } = props;
    // Every metric of this deployment carries its name as the `service` dimension (see lambdas/adapters/telemetry.ts).
    const service = deployment.name;
    this.topic = new sns.Topic(this, 'AlarmTopic', { displayName: `${deployment.name} alarms`, masterKey: props.key, enforceSSL: true });
    for (const email of config.operators.emails) this.topic.addSubscription(new subs.EmailSubscription(email));
    const notify = new actions.SnsAction(this.topic);

    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { dashboardName: deployment.name });
    for (const m of props.machines) {
      const machine = m.machine;
      const perMinute = new cloudwatch.MathExpression({
        expression: `RATE(SEARCH('{${METRIC_NAMESPACE},${TASK_DIMENSION_SETS[1].join(',')}} MetricName="Done" service="${service}" Machine="${machine}"', 'Maximum', 60)) * 60`,
        label: 'per minute',
        period: Duration.minutes(1),
      });
      const throttled = new cloudwatch.Metric({ namespace: METRIC_NAMESPACE, metricName: 'ThrottledSeconds', dimensionsMap: { service, Machine: machine }, statistic: 'Sum', period: Duration.minutes(5) });
      dashboard.addWidgets(
        new cloudwatch.GraphWidget({ title: `${m.name}: ${machine === 'doctype-copy' ? 'docs' : 'rows'} per minute`, left: [perMinute], width: 8 }),
        new cloudwatch.GraphWidget({ title: `${m.name}: seconds throttled`, left: [throttled], width: 8 }),
        new cloudwatch.GraphWidget({ title: `${m.name}: executions`, left: [m.stateMachine.metricStarted(), m.stateMachine.metricSucceeded(), m.stateMachine.metricFailed()], width: 8 }),
      );
      const failed = m.stateMachine.metricFailed({ period: Duration.minutes(5), statistic: 'Sum' }).createAlarm(this, `${machine}Failed`, {
        alarmDescription: `An execution of ${m.name} failed: see its error and cause, fix, and start it again (it resumes from the checkpoint).`,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      const slow = throttled.with({ period: Duration.hours(1) }).createAlarm(this, `${machine}Throttled`, {
        alarmDescription: `${m.name} waited on its throttle more than ${config.alarms.throttledMinutesPerHour} minutes in an hour: the database is busy, lagging, or the migration is paused.`,
        threshold: config.alarms.throttledMinutesPerHour * 60,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      for (const alarm of [failed, slow]) {
        alarm.addAlarmAction(notify);
        this.alarms.push(alarm);
      }
    }
    const waiting = new cloudwatch.Metric({ namespace: METRIC_NAMESPACE, metricName: 'OldestPendingApprovalHours', dimensionsMap: { service }, statistic: 'Maximum', period: Duration.minutes(15) }).createAlarm(this, 'ApprovalWaiting', {
      alarmDescription: `An approval has waited more than ${config.alarms.approvalWaitingHours} hours (it fails the execution safely after 7 days).`,
      threshold: config.alarms.approvalWaitingHours,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    waiting.addAlarmAction(notify);
    this.alarms.push(waiting);
    dashboard.addWidgets(
      new cloudwatch.LogQueryWidget({
        title: 'phase of each migration (latest task reports)',
        logGroupNames: props.taskLogGroups.map((g) => g.logGroupName),
        queryLines: ['fields @timestamp, machine, migrationId, phase, message, throttle', 'filter ispresent(phase) and ispresent(migrationId)', 'stats latest(phase) as phase, latest(message) as note, latest(throttle) as throttle by machine, migrationId'],
        width: 16,
      }),
      new cloudwatch.AlarmStatusWidget({ title: 'alarms', alarms: this.alarms, width: 8 }),
    );
  }
}
