import type { TaskDeps } from '../core/ports/task-deps.ts';
import { compareIds } from '../core/ids.ts';
import { idBounds } from '../core/tables/copier.ts';
import { deliverAndRecord, deliverRows } from '../core/tables/delivery.ts';
import { spanRange, type DeliveryLedger, type KeyLedger } from '../core/tables/ledger.ts';
import { deleteSpan, describeKeys, sweepKeys } from '../core/tables/key-spans.ts';
import { sweep } from '../core/tables/sweeper.ts';
import { lowWater } from '../core/tables/horizon.ts';
import { deleteIds, idsAfter, setAutoIncrement, truncateTable, withWriteLock } from '../core/tables/table-writes.ts';
import { hasAnyRow, liveAutoIncrementOf } from '../core/tables/inspector.ts';
import { byKey, checkThrottle, keyLedgerOf, ledgerOf, loopState, notice, openMigration, outcomeState, report, save, timeLeft, type LoopState, type Migration, type TaskEvent } from './open-migration.ts';
import { sweepState } from './sweep.ts';
import { closeCopyWindow, windowLock } from '../core/tables/copy-window.ts';

/**
 * One batch of the trickle-delete: the next source ids after the cursor. Those the ledger does not
 * count as delivered (a row committed late, or written since the last sweep) are delivered first;
 * then the whole batch is deleted from the source. Rows delivered earlier are not compared or
 * copied again: the target's copy is the application's. Returns the rows deleted, or null when
 * the source holds no row above the cursor.
 */
async function deleteBatch(m: Migration, ledger: DeliveryLedger): Promise<number | null> {
  const s = m.state;
  const low = await lowWater(m.source, m.input.source, m.tables.idColumn, (s.idClock ??= []));
  const ids = await idsAfter(m.source, m.input.source, m.tables.idColumn, s.cleanedUpTo, m.input.cleanup.batchRows);
  if (ids.length === 0) return null;
  const late = await deliverAndRecord(m.tables, ledger, ids, s.idFloor, low);
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
    // Read after the throttle check, which takes in the live knobs.
    const pause = m.input.cleanup.pauseMillis;
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
  const s = m.state;
  const src = m.input.source;
  if (s.truncating) await afterUnrecordedTruncate(m, s.truncating.autoIncrement);
  const swept = await sweep(m, ledger);
  if (swept.kind !== 'caught-up') return sweepState(m, swept);
  const lock = await m.deps.sql.connectDedicated(src.connection);
  try {
    const changed = await withWriteLock(lock, src, 10, async () => {
      const { max } = await idBounds(lock, src, m.tables.idColumn);
      const top = await ledger.top();
      if ((max !== null && (top === null || compareIds(max, top) > 0)) || (await ledger.anyUnsettled())) return true;
      // TRUNCATE starts AUTO_INCREMENT again from 1: the counter is put back, and noted first, so a run that stops
      // in between finds out (ids handed out again below the copied ones would pass every later check).
      const counter = await liveAutoIncrementOf(lock, src);
      if (counter !== null) {
        s.truncating = { autoIncrement: counter };
        await save(m);
      }
      await truncateTable(lock, src);
      if (counter !== null) await setAutoIncrement(lock, src, BigInt(counter));
      return false;
    });
    if (changed) {
      report(m, 'rows arrived in the source since the sweep: sweeping again before truncating');
      return loopState(m, { done: false });
    }
  } finally {
    await lock.close();
  }
  s.truncating = null;
  s.rowsDeleted = (await ledger.totals()).rows;
  return finish(m);
}

/**
 * A run that truncated the source may have stopped before it recorded so. If the source's counter
 * is below the one noted, the TRUNCATE ran and its counter was not put back: every row the source
 * holds now was written after it, under ids handed out again. They are delivered like any other
 * (an id the target already holds with other content stops the run, deleting nothing), and the
 * counter is raised back. Otherwise nothing of the kind happened.
 */
async function afterUnrecordedTruncate(m: Migration, noted: string): Promise<void> {
  const src = m.input.source;
  const now = await liveAutoIncrementOf(m.source, src);
  if (now !== null && BigInt(now) < BigInt(noted)) {
    report(m, `the source's AUTO_INCREMENT is ${now}, below ${noted} before the last TRUNCATE: its rows were written after it; delivering them before anything else`);
    for (let after: string | null = null; ; ) {
      const ids = await idsAfter(m.source, src, m.tables.idColumn, after, m.input.cleanup.batchRows);
      if (ids.length === 0) break;
      await deliverRows(m.tables, ids);
      after = ids[ids.length - 1]!;
    }
    await setAutoIncrement(m.source, src, BigInt(noted));
  }
  m.state.truncating = null;
  await save(m);
}

/**
 * The trickle-delete of a migration copied by another key than one integer id: span after span of
 * the key ledger, each deleted only when every row it holds is delivered (see deleteSpan), then a
 * sweep, again until the source is empty.
 */
async function trickleDeleteByKey(m: Migration, ledger: KeyLedger): Promise<LoopState> {
  const s = m.state;
  while (timeLeft(m)) {
    const decision = await checkThrottle(m);
    if (decision.throttled) return outcomeState(m, { kind: 'throttled', reason: decision.reason, waitSeconds: decision.waitSeconds });
    const [span] = await ledger.after(s.cleanedUpTo === null ? null : Number(s.cleanedUpTo), 1);
    if (!span) {
      // Past the last span: what arrived since is delivered (new spans), and deleted on the next round.
      const swept = await sweepKeys(m, ledger);
      if (swept.kind !== 'caught-up') return sweepState(m, swept);
      if (!(await hasAnyRow(m.source, m.input.source))) return finish(m);
      s.cleanedUpTo = null;
      await save(m);
      continue;
    }
    const { deleted, late } = await deleteSpan(m, ledger, span);
    if (late > 0) {
      s.sweep.lateRows = (BigInt(s.sweep.lateRows) + BigInt(late)).toString();
      s.quietSince = new Date(m.deps.now()).toISOString();
    }
    s.cleanedUpTo = String(span.seq);
    s.rowsDeleted = (BigInt(s.rowsDeleted) + BigInt(deleted)).toString();
    await save(m);
    if (deleted || late) report(m, `deleted ${deleted} source rows, ${describeKeys(m.tables, spanRange(span))}${late ? ` (${late} not yet in the target copied first)` : ''}`);
    const pause = m.input.cleanup.pauseMillis;
    if (pause > 0) await new Promise((r) => setTimeout(r, pause));
  }
  return loopState(m, { done: false });
}

/** The revert window closes with the cleanup's start: its triggers off the new table, then its log (see copy-window.ts). */
async function closeWindow(m: Migration): Promise<void> {
  const w = m.state.window;
  if (!w || !('openedAt' in w) || w.closedAt) return;
  const t = m.input.target;
  await closeCopyWindow(m.target, m.input.migrationId, t, windowLock(m.deps.stopping));
  w.closedAt = new Date(m.deps.now()).toISOString();
  await save(m);
  notice(m, `revert window closed: ferry's triggers dropped from ${t.database}.${t.table}, and their log`);
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
  await closeWindow(m);
  if (byKey(m)) {
    const keys = keyLedgerOf(m);
    if (m.input.cleanup.mode === 'trickle-delete') return trickleDeleteByKey(m, keys);
    // "none" ("truncate" is refused by Preflight for such a key)
    const swept = await sweepKeys(m, keys);
    return swept.kind === 'caught-up' ? finish(m) : sweepState(m, swept);
  }
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
