import { ROW_HASH } from '../core/checksum.ts';
import type { TaskDeps } from '../core/ports/task-deps.ts';
import { CheckpointStore } from '../core/checkpoints.ts';
import { chunkSettings, initialChunkSpan } from '../core/chunker.ts';
import { InvalidInput } from '../core/errors.ts';
import { alterBindingOf, alterIdentityOf, type OnlineAlterInput } from '../core/online-alter-input.ts';
import { claimMigrationId, refuseIfClaimedElsewhere } from '../core/migration-claims.ts';
import type { MigrationClaims } from '../core/ports/claims.ts';
import { estimatedRows, type CopyKey } from '../core/tables/inspector.ts';
import { checkAlterTable } from '../core/tables/alter-checks.ts';
import { checkThrottleQuery } from '../core/tables/preflight-checks.ts';
import { executionOf, startState, takeOver, type TaskEvent } from '../core/tables/chunked-copy.ts';
import { MACHINE, parseOnlineAlterInput, type LoopState, type OnlineAlterState, type Phase } from './open-alter.ts';

/**
 * Every check Preflight makes before it writes anything: the migration id held by no other input,
 * a session-capable connection, then the checkpoint of this input, or (none yet) the table, the
 * ALTER tried on an empty scratch table that is dropped at once, and the throttle query. `ferry
 * plan` runs exactly these.
 */
export async function checkOnlineAlter(input: OnlineAlterInput, deps: Pick<TaskDeps, 'sql'> & { readonly claims: Pick<MigrationClaims, 'ownerOf'> }) {
  await refuseIfClaimedElsewhere(input.migrationId, alterBindingOf(input), deps.claims);
  const conn = await deps.sql.connect(input.table.connection);
  if (!conn.sessions) {
    throw new InvalidInput('table.connection', `"${conn.name}" is an RDS Data API connection; online-alter's triggers, consistent-snapshot verification and swap need a session of their own: configure the cluster as a host connection (mysql2 in the VPC)`);
  }
  const store = new CheckpointStore<OnlineAlterState>(conn, input.table.database, MACHINE);
  const checkpoint = await store.load(input.migrationId, alterIdentityOf(input));
  let addedUniqueKeys: string[] = [];
  let copyKey: CopyKey | undefined;
  // after a revert the table is the original again, with nothing of ferry's on it: checked as for a first run
  if (!checkpoint || checkpoint.phase === 'reverted') {
    ({ addedUniqueKeys, copyKey } = await checkAlterTable(conn, input));
    await checkThrottleQuery(input.throttle.connection ? await deps.sql.connect(input.throttle.connection) : conn, input.throttle.query);
  }
  return { conn, store, checkpoint, addedUniqueKeys, copyKey };
}

/** Validates everything (leaving nothing behind), claims the migration id, then creates or finds the checkpoint. */
export async function preflight(event: TaskEvent, deps: TaskDeps): Promise<LoopState> {
  const input = parseOnlineAlterInput(event.migration);
  const checked = await checkOnlineAlter(input, deps);
  await claimMigrationId(input.migrationId, alterBindingOf(input), executionOf(event), deps.claims, deps.now);
  const { conn, store } = checked;
  let checkpoint = checked.checkpoint;
  if (checkpoint) await takeOver(store, checkpoint, event, deps);
  if (checkpoint?.phase === 'reverted') {
    // A run after a revert starts afresh: the revert left the original table as it was, and nothing of ferry's.
    await store.remove(input.migrationId);
    checkpoint = null;
    deps.report({ migrationId: input.migrationId, phase: 'prepare', done: '0', total: null, unit: 'rows', note: 'reverted before: starting afresh', throttle: null });
  }
  if (!checkpoint) {
    const now = new Date(deps.now()).toISOString();
    checkpoint = await store.create(input.migrationId, alterIdentityOf(input), 'prepare', {
      startedAt: now, estimatedRows: await estimatedRows(conn, input.table), copiedUpTo: null, rowsCopied: '0', chunkSpan: initialChunkSpan(chunkSettings(input.chunk)),
      rowsDeleted: '0', throttledMillis: 0, phaseStartedAt: { prepare: now },
      rangeMin: null, rangeMax: null, verifyUpTo: null, verifiedUpTo: null, rangesVerified: 0, rowsVerified: '0', rangesRepaired: 0,
      swappedAt: null, swapAttempts: 0, autoIncrementAtSwap: null, owner: executionOf(event), rowHash: ROW_HASH, copyKey: checked.copyKey!,
    });
  }
  return startState(checkpoint.phase as Phase, checkpoint.state);
}
