import type { TaskDeps } from '../core/ports/task-deps.ts';
import { holesAround, type Hole } from '../core/holes.ts';
import { addId, compareIds, toBig } from '../core/ids.ts';
import { nextVerifyRange, resizeChunk } from '../core/tables/chunked-copy.ts';
import { idHoles } from '../core/tables/inspector.ts';
import { verifyRange, type RangeVerdict } from '../core/tables/verifier.ts';
import { checkThrottle, ledgerOf, loopState, openMigration, outcomeState, report, save, timeLeft, type LoopState, type Migration, type TaskEvent } from './open-migration.ts';

/**
 * The ledger span for a verified range: every id in it that holds a row is delivered; the ids
 * that hold none are its holes, read from the target (the two sides are equal now, and the
 * target is not the production server). The first span starts at the lowest id the type allows.
 */
async function recordVerified(m: Migration, verdict: RangeVerdict, first: boolean): Promise<void> {
  const { range } = verdict;
  const dense = toBig(verdict.rows) === toBig(range.hi) - toBig(range.lo) + 1n;
  const inRange: Hole[] = dense ? [] : await idHoles(m.target, m.input.target, m.tables.idColumn, range);
  const lo = first && compareIds(m.state.idFloor, range.lo) < 0 ? m.state.idFloor : range.lo;
  const holes = lo === range.lo ? inRange : [...holesAround(lo, addId(range.lo, -1), []), ...inRange];
  await ledgerOf(m).record({ lo, hi: range.hi, rows: verdict.rows, checksum: verdict.checksum, holes, settled: holes.length === 0 });
}

/**
 * Compares source and target range by range (count and checksum) over every id copied, in
 * contiguous ranges so no id is skipped, and records each range in the ledger. A range that
 * differs is copied again and compared once more; one still wrong fails. Returns true when
 * everything copied is verified, false when the time budget ran out first, or the throttle's answer.
 */
export async function verifyCopied(m: Migration): Promise<boolean | LoopState> {
  const s = m.state;
  while (s.copiedUpTo !== null && (s.verifiedUpTo === null || compareIds(s.verifiedUpTo, s.copiedUpTo) < 0)) {
    if (!timeLeft(m)) return false;
    const range = await nextVerifyRange(m, s.verifiedUpTo, s.copiedUpTo);
    if (range === null) break;
    const decision = await checkThrottle(m);
    if (decision.throttled) return outcomeState(m, { kind: 'throttled', reason: decision.reason, waitSeconds: decision.waitSeconds });
    const started = m.deps.now();
    const verdict = await verifyRange(m.tables, range);
    await recordVerified(m, verdict, s.verifiedUpTo === null);
    resizeChunk(m, m.deps.now() - started);
    s.verifiedUpTo = verdict.range.hi;
    s.rangesVerified += 1;
    s.rowsVerified = (BigInt(s.rowsVerified) + BigInt(verdict.rows)).toString();
    if (verdict.repaired) s.rangesRepaired += 1;
    await save(m);
    report(m, `verified ids ${verdict.range.lo}..${verdict.range.hi}: ${verdict.rows} rows equal${verdict.repaired ? ' after a re-copy' : ''}`);
  }
  return true;
}

/** Verifies every id copied before any approval is asked for. */
export async function verify(event: TaskEvent, deps: TaskDeps): Promise<LoopState> {
  const m = await openMigration(event, deps);
  const result = await verifyCopied(m);
  if (result === false) return loopState(m, { done: false });
  if (result !== true) return result;
  await save(m, 'cutover-approval');
  report(m, `verified ${m.state.rangesVerified} ranges, ${m.state.rowsVerified} rows, up to id ${m.state.copiedUpTo ?? '(none)'} (${m.state.rangesRepaired} repaired by a re-copy)`);
  return loopState(m, { done: true });
}
