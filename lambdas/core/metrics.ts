/** Where ferry's metrics live in CloudWatch. */
export const METRIC_NAMESPACE = 'Ferry';

/**
 * The dimension sets every task metric is published with: the first is what the alarms and the
 * throttle graphs read (one deployment's machine, all its migrations), the second the per-migration
 * rate graphs. `service` is the deployment's name (`ferry`, `ferry-staging`).
 */
export const TASK_DIMENSION_SETS = [
  ['service', 'Machine'],
  ['service', 'Machine', 'MigrationId'],
] as const;

/** The approval watch's metrics: one deployment's pending approvals. */
export const APPROVAL_DIMENSION_SETS = [['service']] as const;
