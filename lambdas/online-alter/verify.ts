import type { TaskDeps } from '../core/ports/task-deps.ts';
import { sameChecksum } from '../core/checksum.ts';
import { VerificationFailed } from '../core/errors.ts';
import { compareIds } from '../core/ids.ts';
import { idBounds } from '../core/tables/copier.ts';
import { checkThrottle, loopState, nextVerifyRange, resizeChunk, outcomeState, report, save, timeLeft, type TaskEvent } from '../core/tables/chunked-copy.ts';
import { clearLogged, rewriteLogged } from '../core/tables/shadow.ts';
import { repairRange, snapshotCompare } from '../core/tables/verifier.ts';
import { openAlter, type LoopState } from './open-alter.ts';

/** Attempts at a range that keeps differing: writes under way can move it between reads. */
const ATTEMPTS = 3;

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
    for (let attempt = 1; !sameChecksum(result.source, result.target); attempt++) {
      if (attempt > ATTEMPTS) {
        throw new VerificationFailed(
          `ids ${range.lo}..${range.hi} of ${t.sourceTable.table} and ${t.targetTable.table} still differ after ${ATTEMPTS} repairs ` +
            `(table ${result.source.rowCount} rows, shadow ${result.target.rowCount}); does the ALTER change how values print (a type or charset change)?`,
        );
      }
      await repairRange(m.source, t, range, () => clearLogged(m.source, m.input.migrationId, t.sourceTable, range.lo, range.hi));
      s.rangesRepaired += 1;
      result = await snapshotCompare(m.source, t, range);
    }
    resizeChunk(m, deps.now() - started);
    s.verifiedUpTo = range.hi;
    s.rangesVerified += 1;
    s.rowsVerified = (BigInt(s.rowsVerified) + BigInt(result.source.rowCount)).toString();
    await save(m);
    report(m, `verified ids ${range.lo}..${range.hi}: ${result.source.rowCount} rows equal`);
  }
  s.rowsWrittenAgain = (s.rowsWrittenAgain ?? 0) + (await rewriteLogged(m.source, m.input.migrationId, t));
  await save(m, 'cutover-approval');
  report(m, `verified ${s.rangesVerified} ranges, ${s.rowsVerified} rows (${s.rangesRepaired} repaired); triggers keep the shadow in step until the swap`);
  return loopState(m, { done: true });
}
