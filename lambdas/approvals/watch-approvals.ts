import { SSMClient } from '@aws-sdk/client-ssm';
import { AwsApprovals } from '../adapters/approvals-aws.ts';

const approvals = new AwsApprovals(new SSMClient({}));

/** The hours the oldest pending approval has waited, among those given. */
export function oldestPendingHours(pending: readonly { since: Date | undefined }[], now: number): number {
  const ages = pending.map((p) => (p.since ? (now - p.since.getTime()) / 3_600_000 : 0));
  return ages.length ? Math.max(...ages) : 0;
}

/** Runs on a schedule: publishes how long the oldest pending approval has waited, for the alarm. */
export async function handler(): Promise<{ pending: number; oldestHours: number }> {
  const pending = await approvals.pending();
  const oldestHours = oldestPendingHours(pending, Date.now());
  process.stdout.write(
    JSON.stringify({
      _aws: { Timestamp: Date.now(), CloudWatchMetrics: [{ Namespace: 'Ferry', Dimensions: [[]], Metrics: [{ Name: 'OldestPendingApprovalHours', Unit: 'None' }, { Name: 'PendingApprovals', Unit: 'Count' }] }] },
      OldestPendingApprovalHours: oldestHours,
      PendingApprovals: pending.length,
      pending: pending.map((p) => `${p.migrationId}/${p.step}`),
    }) + '\n',
  );
  return { pending: pending.length, oldestHours };
}
