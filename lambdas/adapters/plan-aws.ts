import { CloudWatchClient, GetMetricStatisticsCommand } from '@aws-sdk/client-cloudwatch';
import type { z } from 'zod';
import { FerryError } from '../core/errors.ts';
import { parseInput } from '../core/input-parts.ts';
import { withKnobs } from '../core/knobs.ts';
import type { Plan, PlanDeps, PlanKnobs } from '../core/plan.ts';
import type { SqlConnection } from '../core/ports/sql.ts';
import type { TaskDeps } from '../core/ports/task-deps.ts';

/** An RDS instance endpoint (`<instance>.<hash>.<region>.rds.amazonaws.com`), not a cluster's or a proxy's. */
const INSTANCE_ENDPOINT = /^([a-z][a-z0-9-]{0,62})\.[a-z0-9]+\.[a-z0-9-]+\.rds\.amazonaws\.com$/;

/**
 * Free storage of the RDS instance a connection reaches, from CloudWatch's `FreeStorageSpace` (the
 * lowest of the last fifteen minutes). Null for anything else: an Aurora cluster's storage grows by
 * itself, and a proxy or another host says nothing of its disk.
 */
export async function rdsFreeStorage(cloudwatch: CloudWatchClient, conn: SqlConnection, now = Date.now()): Promise<{ bytes: string; where: string } | null> {
  const host = conn.serverKey.replace(/:\d+$/, '');
  const instance = INSTANCE_ENDPOINT.exec(host)?.[1];
  if (!instance || host.includes('.cluster-') || host.includes('.proxy-')) return null;
  const out = await cloudwatch.send(
    new GetMetricStatisticsCommand({
      Namespace: 'AWS/RDS',
      MetricName: 'FreeStorageSpace',
      Dimensions: [{ Name: 'DBInstanceIdentifier', Value: instance }],
      StartTime: new Date(now - 15 * 60_000),
      EndTime: new Date(now),
      Period: 300,
      Statistics: ['Minimum'],
    }),
  );
  const lowest = Math.min(...(out.Datapoints ?? []).map((d) => d.Minimum ?? Infinity));
  return Number.isFinite(lowest) ? { bytes: BigInt(Math.floor(lowest)).toString(), where: `CloudWatch FreeStorageSpace of RDS instance ${instance} (lowest of the last 15 minutes)` } : null;
}

export type PlanAnswer = { readonly plan: Plan } | { readonly refused: { readonly field: string; readonly message: string } };

/**
 * `ferry plan --aws`, run where the databases answer: the machine's own plan with the task ports of
 * this deployment, the migration's live knobs from SSM put in, and free storage from CloudWatch. A
 * refusal (the input, or a check Preflight would fail) is an answer, not an error.
 */
export async function planOnAws<S extends z.ZodType>(
  schema: S,
  planner: (input: z.output<S>, deps: PlanDeps, knobs: PlanKnobs) => Promise<Plan>,
  event: { readonly migration: unknown },
  deps: TaskDeps,
  cloudwatch: CloudWatchClient = new CloudWatchClient({}),
): Promise<PlanAnswer> {
  try {
    const parsed = parseInput(schema, event.migration);
    const tuned = withKnobs(schema, parsed, await deps.knobs.list((parsed as { migrationId: string }).migrationId));
    const planDeps: PlanDeps = { sql: deps.sql, couch: deps.couch, flags: deps.flags, claims: deps.claims, freeDiskBytes: (conn) => rdsFreeStorage(cloudwatch, conn), now: deps.now };
    return { plan: await planner(tuned.input, planDeps, { inForce: tuned.inForce, ignored: tuned.ignored }) };
  } catch (err) {
    if (err instanceof FerryError && err.name === 'InvalidInput') return { refused: { field: (err as FerryError & { field: string }).field, message: err.message } };
    throw err;
  } finally {
    await deps.sql.closeAll();
  }
}
