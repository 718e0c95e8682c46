import type { TaskDeps } from '../core/ports/task-deps.ts';
import { str } from '../core/ports/sql.ts';
import { rowHashesSql } from '../core/checksum.ts';
import { VerificationFailed } from '../core/errors.ts';
import { compareIds, maxId } from '../core/ids.ts';
import { qualified, quoteIdent } from '../core/identifiers.ts';
import { copyRange, idBounds } from '../core/tables/copier.ts';
import { verifyCopied } from './verify.ts';
import { checkThrottle, copyUntil, loopState, openMigration, outcomeState, report, save, timeLeft, type LoopState, type Migration, type TaskEvent } from './open-migration.ts';

/** Ids per DELETE statement: keeps each statement short and its locks brief. */
const DELETE_IDS_PER_STATEMENT = 5000;

/**
 * One batch of the trickle-delete: copy the batch's range once more (a late arrival is copied
 * before it is deleted), compare row by row, and delete from the source only the ids whose row
 * is in the target with the same content. Returns the number of rows deleted, or null when the
 * source holds no rows above the cursor.
 */
async function deleteBatch(m: Migration): Promise<number | null> {
  const s = m.state;
  const id = quoteIdent(m.tables.idColumn);
  const src = qualified(m.input.source);
  const idRows = s.cleanedUpTo === null
    ? await m.source.query(`SELECT ${id} AS id FROM ${src} ORDER BY ${id} LIMIT ?`, [m.input.cleanup.batchRows])
    : await m.source.query(`SELECT ${id} AS id FROM ${src} WHERE ${id} > ? ORDER BY ${id} LIMIT ?`, [s.cleanedUpTo, m.input.cleanup.batchRows]);
  if (idRows.length === 0) return null;
  const range = { lo: str(idRows[0]!, 'id')!, hi: str(idRows[idRows.length - 1]!, 'id')! };
  const { inserted } = await copyRange(m.tables, range);
  if (inserted > 0) s.rowsCopied = (BigInt(s.rowsCopied) + BigInt(inserted)).toString();
  s.copiedUpTo = s.copiedUpTo === null ? range.hi : maxId(s.copiedUpTo, range.hi);
  const [sourceRows, targetRows] = await Promise.all([
    m.source.query(rowHashesSql(src, m.tables.idColumn, m.tables.columns), [range.lo, range.hi]),
    m.target.query(rowHashesSql(qualified(m.input.target), m.tables.idColumn, m.tables.columns), [range.lo, range.hi]),
  ]);
  const targetHash = new Map(targetRows.map((r) => [str(r, 'id')!, str(r, 'hash')]));
  const safe: string[] = [];
  for (const row of sourceRows) {
    const rowId = str(row, 'id')!;
    const other = targetHash.get(rowId);
    if (other === undefined || other !== str(row, 'hash')) {
      throw new VerificationFailed(
        `cleanup stopped before deleting id ${rowId}: the target ${other === undefined ? 'does not have it' : 'has a different row with that id'}. ` +
          'Nothing of that batch was deleted. Check for id collisions (raise idOffset) and run again.',
      );
    }
    safe.push(rowId);
  }
  let deleted = 0;
  for (let i = 0; i < safe.length; i += DELETE_IDS_PER_STATEMENT) {
    const ids = safe.slice(i, i + DELETE_IDS_PER_STATEMENT);
    const { affectedRows } = await m.source.execute(`DELETE FROM ${src} WHERE ${id} IN (${ids.map(() => '?').join(', ')})`, ids);
    deleted += affectedRows;
  }
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
    await lock.execute('SET SESSION lock_wait_timeout = 10');
    await lock.execute(`LOCK TABLES ${qualified(m.input.source)} WRITE`);
    const bounds = await idBounds(lock, m.input.source, m.tables.idColumn);
    const count = (await lock.query(`SELECT COUNT(*) AS n FROM ${qualified(m.input.source)}`))[0];
    const rows = str(count ?? {}, 'n') ?? '0';
    const arrived = bounds.max !== null && (s.copiedUpTo === null || compareIds(bounds.max, s.copiedUpTo) > 0);
    if (arrived || rows !== s.rowsVerified) {
      report(m, `source changed since verification (${rows} rows now, ${s.rowsVerified} verified): catching up before truncating`);
      s.verifiedUpTo = null;
      s.rowsVerified = '0';
      await save(m);
      return loopState(m, { done: false });
    }
    await lock.execute(`TRUNCATE TABLE ${qualified(m.input.source)}`);
    s.rowsDeleted = (BigInt(s.rowsDeleted) + BigInt(rows)).toString();
  } finally {
    await lock.execute('UNLOCK TABLES').catch(() => undefined);
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
