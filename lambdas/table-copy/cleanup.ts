import type { TaskDeps } from '../core/ports/task-deps.ts';
import { VerificationFailed } from '../core/errors.ts';
import { compareIds, maxId } from '../core/ids.ts';
import { copyRange, idBounds } from '../core/tables/copier.ts';
import { countRows, deleteIds, idsAfter, truncateTable, withWriteLock } from '../core/tables/table-writes.ts';
import { rowHashesBothSides } from '../core/tables/verifier.ts';
import { verifyCopied } from './verify.ts';
import { checkThrottle, copyUntil, loopState, openMigration, outcomeState, report, save, timeLeft, type LoopState, type Migration, type TaskEvent } from './open-migration.ts';

/**
 * One batch of the trickle-delete: copy the batch's range once more (a late arrival is copied
 * before it is deleted), compare row by row, and delete from the source only the ids whose row
 * is in the target with the same content. Returns the number of rows deleted, or null when the
 * source holds no rows above the cursor.
 */
async function deleteBatch(m: Migration): Promise<number | null> {
  const s = m.state;
  const ids = await idsAfter(m.source, m.input.source, m.tables.idColumn, s.cleanedUpTo, m.input.cleanup.batchRows);
  if (ids.length === 0) return null;
  const range = { lo: ids[0]!, hi: ids[ids.length - 1]! };
  const { inserted } = await copyRange(m.tables, range);
  if (inserted > 0) s.lateRowsCopied = (BigInt(s.lateRowsCopied ?? '0') + BigInt(inserted)).toString();
  s.copiedUpTo = s.copiedUpTo === null ? range.hi : maxId(s.copiedUpTo, range.hi);
  const [sourceRows, targetRows] = await rowHashesBothSides(m.tables, range);
  const targetHash = new Map(targetRows.map((r) => [r.id, r.hash]));
  const safe: string[] = [];
  for (const row of sourceRows) {
    const other = targetHash.get(row.id);
    if (other === undefined || other !== row.hash) {
      throw new VerificationFailed(
        `cleanup stopped before deleting id ${row.id}: the target ${other === undefined ? 'does not have it' : 'has a different row with that id'}. ` +
          'Nothing of that batch was deleted. Check for id collisions (raise idOffset) and run again.',
      );
    }
    safe.push(row.id);
  }
  const deleted = await deleteIds(m.source, m.input.source, m.tables.idColumn, safe);
  s.cleanedUpTo = range.hi;
  s.rowsDeleted = (BigInt(s.rowsDeleted) + BigInt(deleted)).toString();
  await save(m);
  report(m, `deleted ${deleted} source rows, ids ${range.lo}..${range.hi}`);
  return deleted;
}

async function trickleDelete(m: Migration): Promise<LoopState> {
  const pause = m.input.cleanup.pauseMillis;
  while (timeLeft(m)) {
    const decision = await checkThrottle(m);
    if (decision.throttled) return outcomeState(m, { kind: 'throttled', reason: decision.reason, waitSeconds: decision.waitSeconds });
    const deleted = await deleteBatch(m);
    if (deleted === null) {
      // Nothing above the cursor. A row committed late below it is found by one pass from the start.
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
 * Catches up and verifies what the catch-up copied, then, under a write lock on the source,
 * checks that no row arrived or vanished since (its max id and its row count against the rows
 * verified) and only then truncates. The lock is held while the source rows are counted.
 */
async function truncate(m: Migration): Promise<LoopState> {
  const s = m.state;
  const { max } = await idBounds(m.source, m.input.source, m.tables.idColumn);
  if (max !== null && (s.copiedUpTo === null || compareIds(max, s.copiedUpTo) > 0)) {
    const outcome = await copyUntil(m, max);
    if (outcome.kind !== 'caught-up') return outcomeState(m, outcome);
  }
  const verified = await verifyCopied(m);
  if (verified === false) return loopState(m, { done: false });
  if (verified !== true) return verified;
  const lock = await m.deps.sql.connectDedicated(m.input.source.connection);
  try {
    const truncated = await withWriteLock(lock, m.input.source, 10, async () => {
      const bounds = await idBounds(lock, m.input.source, m.tables.idColumn);
      const rows = await countRows(lock, m.input.source);
      const arrived = bounds.max !== null && (s.copiedUpTo === null || compareIds(bounds.max, s.copiedUpTo) > 0);
      if (arrived || rows !== s.rowsVerified) {
        report(m, `source changed since verification (${rows} rows now, ${s.rowsVerified} verified): catching up before truncating`);
        return null;
      }
      await truncateTable(lock, m.input.source);
      return rows;
    });
    if (truncated === null) {
      s.verifiedUpTo = null;
      s.rowsVerified = '0';
      await save(m);
      return loopState(m, { done: false });
    }
    s.rowsDeleted = (BigInt(s.rowsDeleted) + BigInt(truncated)).toString();
  } finally {
    await lock.close();
  }
  return finish(m);
}

async function finish(m: Migration): Promise<LoopState> {
  await save(m, 'done');
  report(m, `cleanup done: ${m.state.rowsDeleted} source rows removed`);
  return loopState(m, { done: true });
}

/** After the cleanup approval: empties the old table by the input's `cleanup.mode`. */
export async function cleanup(event: TaskEvent, deps: TaskDeps): Promise<LoopState> {
  const m = await openMigration(event, deps);
  if (m.phase === 'cleanup-approval') await save(m, 'cleanup');
  if (m.phase === 'done') return loopState(m, { done: true });
  switch (m.input.cleanup.mode) {
    case 'none':
      return finish(m);
    case 'truncate':
      return truncate(m);
    case 'trickle-delete':
      return trickleDelete(m);
  }
}
