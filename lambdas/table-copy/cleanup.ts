import type { TaskDeps } from '../core/ports/task-deps.ts';
import { compareIds } from '../core/ids.ts';
import { idBounds } from '../core/tables/copier.ts';
import { deliverAndRecord } from '../core/tables/delivery.ts';
import type { DeliveryLedger } from '../core/tables/ledger.ts';
import { sweep } from '../core/tables/sweeper.ts';
import { deleteIds, idsAfter, truncateTable, withWriteLock } from '../core/tables/table-writes.ts';
import { checkThrottle, ledgerOf, loopState, openMigration, outcomeState, report, save, timeLeft, type LoopState, type Migration, type TaskEvent } from './open-migration.ts';
import { sweepState } from './sweep.ts';

/**
 * One batch of the trickle-delete: the next source ids after the cursor. Those the ledger does not
 * count as delivered (a row committed late, or written since the last sweep) are delivered first;
 * then the whole batch is deleted from the source. Rows delivered earlier are not compared or
 * copied again: the target's copy is the application's. Returns the rows deleted, or null when
 * the source holds no row above the cursor.
 */
async function deleteBatch(m: Migration, ledger: DeliveryLedger): Promise<number | null> {
  const s = m.state;
  const ids = await idsAfter(m.source, m.input.source, m.tables.idColumn, s.cleanedUpTo, m.input.cleanup.batchRows);
  if (ids.length === 0) return null;
  const late = await deliverAndRecord(m.tables, ledger, ids, s.idFloor);
  if (late > 0) {
    s.sweep.lateRows = (BigInt(s.sweep.lateRows) + BigInt(late)).toString();
    s.quietSince = new Date(m.deps.now()).toISOString();
  }
  const deleted = await deleteIds(m.source, m.input.source, m.tables.idColumn, ids);
  s.cleanedUpTo = ids[ids.length - 1]!;
  s.rowsDeleted = (BigInt(s.rowsDeleted) + BigInt(deleted)).toString();
  await save(m);
  report(m, `deleted ${deleted} source rows, ids ${ids[0]}..${s.cleanedUpTo}${late ? ` (${late} not yet in the target copied first)` : ''}`);
  return deleted;
}

async function trickleDelete(m: Migration, ledger: DeliveryLedger): Promise<LoopState> {
  const pause = m.input.cleanup.pauseMillis;
  while (timeLeft(m)) {
    const decision = await checkThrottle(m);
    if (decision.throttled) return outcomeState(m, { kind: 'throttled', reason: decision.reason, waitSeconds: decision.waitSeconds });
    const deleted = await deleteBatch(m, ledger);
    if (deleted === null) {
      // Past the last row: wait out the transactions that may still commit rows, then look again.
      const swept = await sweep(m, ledger);
      if (swept.kind !== 'caught-up') return sweepState(m, swept);
      const { min } = await idBounds(m.source, m.input.source, m.tables.idColumn);
      if (min === null) return finish(m);
      m.state.cleanedUpTo = null;
      await save(m);
      continue;
    }
    if (pause > 0) await new Promise((r) => setTimeout(r, pause));
  }
  return loopState(m, { done: false });
}

/**
 * Sweeps until every row the source holds is delivered, then, under a write lock on the source
 * (which waits for every transaction that wrote to it), checks from the ledger alone that nothing
 * arrived since: no id above the ledger's top, and no span left unsettled. Only then truncates.
 * The lock is held for two index probes, never for a count of the table.
 */
async function truncate(m: Migration, ledger: DeliveryLedger): Promise<LoopState> {
  const swept = await sweep(m, ledger);
  if (swept.kind !== 'caught-up') return sweepState(m, swept);
  const lock = await m.deps.sql.connectDedicated(m.input.source.connection);
  try {
    const changed = await withWriteLock(lock, m.input.source, 10, async () => {
      const { max } = await idBounds(lock, m.input.source, m.tables.idColumn);
      const top = await ledger.top();
      if ((max !== null && (top === null || compareIds(max, top) > 0)) || (await ledger.anyUnsettled())) return true;
      await truncateTable(lock, m.input.source);
      return false;
    });
    if (changed) {
      report(m, 'rows arrived in the source since the sweep: sweeping again before truncating');
      return loopState(m, { done: false });
    }
  } finally {
    await lock.close();
  }
  m.state.rowsDeleted = (await ledger.totals()).rows;
  return finish(m);
}

async function finish(m: Migration): Promise<LoopState> {
  await save(m, 'done');
  report(m, `cleanup done: ${m.state.rowsDeleted} source rows removed`);
  return loopState(m, { done: true });
}

/**
 * After the cleanup approval: empties the old table by the input's `cleanup.mode`. Every mode
 * ends with a sweep (rows committed while the approval waited are copied), so no execution
 * succeeds while a committed source row is missing from the target.
 */
export async function cleanup(event: TaskEvent, deps: TaskDeps): Promise<LoopState> {
  const m = await openMigration(event, deps);
  if (m.phase === 'cleanup-approval') await save(m, 'cleanup');
  if (m.phase === 'done') return loopState(m, { done: true });
  const ledger = ledgerOf(m);
  switch (m.input.cleanup.mode) {
    case 'none': {
      const swept = await sweep(m, ledger);
      return swept.kind === 'caught-up' ? finish(m) : sweepState(m, swept);
    }
    case 'truncate':
      return truncate(m, ledger);
    case 'trickle-delete':
      return trickleDelete(m, ledger);
  }
}
