import type { TaskDeps } from '../core/ports/task-deps.ts';
import { checkThrottle, loopState, outcomeState, report, save, timeLeft, type TaskEvent } from '../core/tables/chunked-copy.ts';
import { keyOf } from '../core/tables/copier.ts';
import { inspectTable } from '../core/tables/inspector.ts';
import { shadowNames } from '../core/tables/shadow.ts';
import { deleteLowest, dropTableIfExists } from '../core/tables/table-writes.ts';
import { closeWindow } from '../core/tables/revert-window.ts';
import { lockOf, openAlter, type LoopState } from './open-alter.ts';

/**
 * After the cleanup approval: the revert window closed (see revert-window.ts), then `_<table>_old`
 * emptied in throttled batches (so the purge never stalls the server the way one huge DROP of a
 * big table can) and dropped; or dropped at once, or kept.
 */
export async function cleanup(event: TaskEvent, deps: TaskDeps): Promise<LoopState> {
  const m = await openAlter(event, deps);
  if (m.phase === 'cleanup-approval') await save(m, 'cleanup');
  if (m.phase === 'done') return loopState(m, { done: true });
  const { old } = shadowNames(m.input.alter.table);
  const { mode } = m.input.alter.cleanup;
  const conn = m.source;
  // the revert window closes with the approval: its triggers off the table first, then its log
  await closeWindow(conn, m.input.migrationId, m.input.alter.table, lockOf(m.input.alter, deps));
  if (mode === 'trickle-delete' && (await inspectTable(conn, old))) {
    while (timeLeft(m)) {
      const decision = await checkThrottle(m);
      if (decision.throttled) return outcomeState(m, { kind: 'throttled', reason: decision.reason, waitSeconds: decision.waitSeconds });
      // Read after the throttle check, which takes in the live knobs.
      const { batchRows, pauseMillis } = m.input.alter.cleanup;
      const deleted = await deleteLowest(conn, old, keyOf(m.tables), batchRows);
      m.state.rowsDeleted = (BigInt(m.state.rowsDeleted) + BigInt(deleted)).toString();
      await save(m);
      report(m, `deleted ${deleted} rows from ${old.table}`);
      if (deleted < batchRows) break;
      if (pauseMillis > 0) await new Promise((r) => setTimeout(r, pauseMillis));
    }
    if (!timeLeft(m)) return loopState(m, { done: false });
  }
  if (mode !== 'none') await dropTableIfExists(conn, old);
  await save(m, 'done');
  report(m, mode === 'none' ? `${old.table} kept, as cleanup.mode "none" asks` : `${old.table} dropped`);
  return loopState(m, { done: true });
}
