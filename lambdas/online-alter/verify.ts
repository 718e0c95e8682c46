import type { TaskDeps } from '../core/ports/task-deps.ts';
import type { SqlConnection } from '../core/ports/sql.ts';
import { sameChecksum, type RangeChecksum } from '../core/checksum.ts';
import { nextChunkRows } from '../core/chunker.ts';
import { VerificationFailed } from '../core/errors.ts';
import { compareIds, type IdRange } from '../core/ids.ts';
import { qualified, quoteIdent } from '../core/identifiers.ts';
import { idBounds, type CopyTables } from '../core/tables/copier.ts';
import { checkThrottle, loopState, nextVerifyRange, outcomeState, report, save, timeLeft, type TaskEvent } from '../core/tables/chunked-copy.ts';
import { checksumRange } from '../core/tables/verifier.ts';
import { openAlter, type LoopState } from './open-alter.ts';

/** Attempts at a range that keeps differing: writes under way can move it between reads. */
const ATTEMPTS = 3;

/**
 * Both checksums in one consistent snapshot: the triggers write the shadow in the same
 * transaction as the table, so inside one snapshot the two agree unless the copy is wrong.
 */
async function snapshotCompare(conn: SqlConnection, t: CopyTables, range: IdRange): Promise<{ table: RangeChecksum; shadow: RangeChecksum }> {
  await conn.execute('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
  try {
    const table = await checksumRange(conn, t.sourceTable, t.idColumn, t.columns, range);
    const shadow = await checksumRange(conn, t.targetTable, t.idColumn, t.columns, range);
    return { table, shadow };
  } finally {
    await conn.execute('COMMIT');
  }
}

/** Makes a range of the shadow equal the table's, under share locks on the table's rows. */
async function repairRange(conn: SqlConnection, t: CopyTables, range: IdRange): Promise<void> {
  const cols = t.columns.map(quoteIdent).join(', ');
  const id = quoteIdent(t.idColumn);
  await conn.execute('START TRANSACTION');
  try {
    await conn.execute(`REPLACE INTO ${qualified(t.targetTable)} (${cols}) SELECT ${cols} FROM ${qualified(t.sourceTable)} WHERE ${id} BETWEEN ? AND ? LOCK IN SHARE MODE`, [range.lo, range.hi]);
    await conn.execute(
      `DELETE s FROM ${qualified(t.targetTable)} s LEFT JOIN ${qualified(t.sourceTable)} o ON o.${id} = s.${id} WHERE s.${id} BETWEEN ? AND ? AND o.${id} IS NULL`,
      [range.lo, range.hi],
    );
    await conn.execute('COMMIT');
  } catch (err) {
    await conn.execute('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/**
 * Compares the table and its shadow range by range, each under a consistent snapshot, up to the
 * highest id present when verification began. A differing range is repaired from the table and
 * compared again; one still differing after three tries fails before any approval.
 */
export async function verify(event: TaskEvent, deps: TaskDeps): Promise<LoopState> {
  const m = await openAlter(event, deps);
  const s = m.state;
  const t = m.tables;
  if (s.verifyUpTo === null) s.verifyUpTo = (await idBounds(m.source, t.sourceTable, t.idColumn)).max;
  while (s.verifyUpTo !== null && (s.verifiedUpTo === null || compareIds(s.verifiedUpTo, s.verifyUpTo) < 0)) {
    if (!timeLeft(m)) return loopState(m, { done: false });
    const decision = await checkThrottle(m);
    if (decision.throttled) return outcomeState(m, { kind: 'throttled', reason: decision.reason, waitSeconds: decision.waitSeconds });
    const next = await nextVerifyRange(m, s.verifiedUpTo, s.verifyUpTo);
    if (next === null) break;
    // Rows deleted since verification began can put the lowest id past verifyUpTo: check that id alone.
    const range = compareIds(next.hi, next.lo) < 0 ? { lo: next.lo, hi: next.lo } : next;
    const started = deps.now();
    let result = await snapshotCompare(m.source, t, range);
    for (let attempt = 1; !sameChecksum(result.table, result.shadow); attempt++) {
      if (attempt > ATTEMPTS) {
        throw new VerificationFailed(
          `ids ${range.lo}..${range.hi} of ${t.sourceTable.table} and ${t.targetTable.table} still differ after ${ATTEMPTS} repairs ` +
            `(table ${result.table.rowCount} rows, shadow ${result.shadow.rowCount}); does the ALTER change how values print (a type or charset change)?`,
        );
      }
      await repairRange(m.source, t, range);
      s.rangesRepaired += 1;
      result = await snapshotCompare(m.source, t, range);
    }
    s.chunkRows = nextChunkRows(s.chunkRows, deps.now() - started, m.input.chunk);
    s.verifiedUpTo = range.hi;
    s.rangesVerified += 1;
    s.rowsVerified = (BigInt(s.rowsVerified) + BigInt(result.table.rowCount)).toString();
    await save(m);
    report(m, `verified ids ${range.lo}..${range.hi}: ${result.table.rowCount} rows equal`);
  }
  await save(m, 'cutover-approval');
  report(m, `verified ${s.rangesVerified} ranges, ${s.rowsVerified} rows (${s.rangesRepaired} repaired); triggers keep the shadow in step until the swap`);
  return loopState(m, { done: true });
}
