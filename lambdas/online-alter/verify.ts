import type { TaskDeps } from '../core/ports/task-deps.ts';
import type { SqlConnection } from '../core/ports/sql.ts';
import { sameChecksum } from '../core/checksum.ts';
import { VerificationFailed } from '../core/errors.ts';
import { addId, compareIds, minId, type Id } from '../core/ids.ts';
import type { KeyRange, KeyValue } from '../core/keys.ts';
import { highestKey, idBounds, keyOf, type CopyTables } from '../core/tables/copier.ts';
import { checkThrottle, loopState, nextVerifyKeys, reached, resizeChunk, outcomeState, report, save, timeLeft, type TaskEvent } from '../core/tables/chunked-copy.ts';
import { clearLogged, rewriteLogged } from '../core/tables/shadow.ts';
import { repairRange, snapshotCompare } from '../core/tables/verifier.ts';
import { openAlter, type AlterMigration, type LoopState } from './open-alter.ts';

/** Attempts at a range that keeps differing: writes under way can move it between reads. */
const ATTEMPTS = 3;

/**
 * Compares a range of the table and its shadow under one consistent snapshot; one that differs is
 * written again from the table and compared again, three times at most. Runs on `conn` (the table's
 * server). Returns the rows verified and how many repairs it took.
 */
export async function verifyAlterRange(conn: SqlConnection, t: CopyTables, migrationId: string, range: KeyRange): Promise<{ rows: string; repairs: number }> {
  const tables = { ...t, source: conn, target: conn };
  let result = await snapshotCompare(conn, tables, range);
  let repairs = 0;
  while (!sameChecksum(result.source, result.target)) {
    if (repairs >= ATTEMPTS) {
      throw new VerificationFailed(
        `${keyOf(t).isInteger ? 'ids' : `keys (${keyOf(t).names})`} ${keyOf(t).describe(range)} of ${t.sourceTable.table} and ${t.targetTable.table} still differ after ${ATTEMPTS} repairs ` +
          `(table ${result.source.rowCount} rows, shadow ${result.target.rowCount}); does the ALTER change how values print (a type or charset change)?`,
      );
    }
    await repairRange(conn, tables, range, () => clearLogged(conn, migrationId, t.sourceTable, keyOf(t), range));
    repairs += 1;
    result = await snapshotCompare(conn, tables, range);
  }
  return { rows: result.source.rowCount, repairs };
}

function recordVerified(m: AlterMigration, range: KeyRange, verdict: { rows: string; repairs: number }): void {
  const s = m.state;
  s.verifiedUpTo = range.hi;
  s.rangesVerified += 1;
  s.rowsVerified = (BigInt(s.rowsVerified) + BigInt(verdict.rows)).toString();
  s.rangesRepaired += verdict.repairs;
}

/**
 * Verification that trails the copy: each chunk just copied is compared on a connection of its own
 * while the next one copies. Ranges are contiguous from the lowest id on either side, so no id is
 * skipped; the Verify phase then covers only what arrived since.
 */
export function trailingVerify(m: AlterMigration, conn: SqlConnection): (hi: KeyValue) => Promise<void> {
  return async (hi) => {
    const s = m.state;
    let range: KeyRange;
    if (!keyOf(m.tables).isInteger) {
      if (reached(m, s.verifiedUpTo, hi)) return;
      range = { lo: s.verifiedUpTo, loExcluded: true, hi };
    } else {
      let lo: Id;
      if (s.verifiedUpTo === null) {
        const [a, b] = await Promise.all([idBounds(conn, m.tables.sourceTable, m.tables.idColumn), idBounds(conn, m.tables.targetTable, m.tables.idColumn)]);
        lo = a.min === null ? b.min ?? hi : b.min === null ? a.min : minId(a.min, b.min);
      } else {
        lo = addId(s.verifiedUpTo, 1);
      }
      if (compareIds(lo, hi) > 0) return;
      range = { lo, hi };
    }
    recordVerified(m, range, await verifyAlterRange(conn, m.tables, m.input.migrationId, range));
  };
}

/**
 * Compares the table and its shadow range by range, each under a consistent snapshot, up to the
 * highest id present when verification began (most of it was verified while the copy ran). A
 * differing range is repaired from the table and compared again; one still differing after three
 * tries fails before any approval. Then every write the triggers logged as refused is written again.
 */
export async function verify(event: TaskEvent, deps: TaskDeps): Promise<LoopState> {
  const m = await openAlter(event, deps);
  const s = m.state;
  const t = m.tables;
  if (s.verifyUpTo === null) {
    // up to the highest key on either side: a row of the shadow above the table's highest is compared too
    s.verifyUpTo = await highestKey(m.source, [t.sourceTable, t.targetTable], keyOf(t));
  }
  while (s.verifyUpTo !== null && !reached(m, s.verifiedUpTo, s.verifyUpTo)) {
    if (!timeLeft(m)) return loopState(m, { done: false });
    const decision = await checkThrottle(m);
    if (decision.throttled) return outcomeState(m, { kind: 'throttled', reason: decision.reason, waitSeconds: decision.waitSeconds });
    const range = await nextVerifyKeys(m, s.verifiedUpTo, s.verifyUpTo);
    if (range === null) break;
    const started = deps.now();
    const verdict = await verifyAlterRange(m.source, t, m.input.migrationId, range);
    resizeChunk(m, deps.now() - started);
    recordVerified(m, range, verdict);
    await save(m);
    report(m, `verified ${keyOf(t).isInteger ? 'ids' : 'keys'} ${keyOf(t).describe(range)}: ${verdict.rows} rows equal`);
  }
  s.rowsWrittenAgain = (s.rowsWrittenAgain ?? 0) + (await rewriteLogged(m.source, m.input.migrationId, t));
  await save(m, 'cutover-approval');
  report(m, `verified ${s.rangesVerified} ranges, ${s.rowsVerified} rows (${s.rangesRepaired} repaired); triggers keep the shadow in step until the swap`);
  return loopState(m, { done: true });
}
