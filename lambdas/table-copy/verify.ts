import type { TaskDeps } from '../core/ports/task-deps.ts';
import type { SqlConnection } from '../core/ports/sql.ts';
import { holesAround, type Hole } from '../core/holes.ts';
import { addId, compareIds, toBig, type Id } from '../core/ids.ts';
import { nextVerifyRange, resizeChunk, type TrailingVerify } from '../core/tables/chunked-copy.ts';
import type { CopyTables } from '../core/tables/copier.ts';
import { idHoles } from '../core/tables/inspector.ts';
import { openHoles } from '../core/tables/delivery.ts';
import { clockReady, lowWater, UNSEEN_MARGIN_MS } from '../core/tables/horizon.ts';
import { MAX_HOLES_KEPT } from '../core/tables/ledger.ts';
import { verifyRange, type RangeVerdict } from '../core/tables/verifier.ts';
import { describeKeys, verifyKeysUpTo } from '../core/tables/key-spans.ts';
import { byKey, checkThrottle, keyLedgerOf, ledgerOf, loopState, openMigration, outcomeState, report, save, timeLeft, type LoopState, type Migration, type TaskEvent } from './open-migration.ts';

/**
 * The low water of the source now (see horizon.ts), asked for before a range is read. Until the
 * clock reaches back far enough (about 1.5 s after its first sample) it waits for that once,
 * rather than keep every hole of the first ranges.
 */
export async function lowWaterNow(m: Migration, source: SqlConnection): Promise<Id | null> {
  if (byKey(m)) return null;
  const clock = (m.state.idClock ??= []);
  const low = await lowWater(source, m.input.source, m.tables.idColumn, clock);
  if (low !== null || clockReady(clock)) return low;
  await new Promise((r) => setTimeout(r, UNSEEN_MARGIN_MS + 100));
  return lowWater(source, m.input.source, m.tables.idColumn, clock);
}

/**
 * The ledger span for a verified range: every id in it that holds a row is delivered; the ids
 * that hold none and may still receive a row (at or above the low water asked for before the
 * range was read) are its holes, read from the target (the two sides are equal now, and the target
 * is not the production server). The first span starts at the lowest id the type allows.
 */
async function recordVerified(m: Migration, verdict: RangeVerdict, low: Id | null, target: SqlConnection = m.target): Promise<void> {
  const s = m.state;
  const { range } = verdict;
  const dense = toBig(verdict.rows) === toBig(range.hi) - toBig(range.lo) + 1n;
  const lo = s.verifiedUpTo === null && compareIds(s.idFloor, range.lo) < 0 ? s.idFloor : range.lo;
  let holes: Hole[] | null = [];
  if (low === null || compareIds(low, range.hi) <= 0) {
    const from = low === null || compareIds(low, range.lo) < 0 ? range.lo : low;
    const inRange = dense ? [] : await idHoles(target, m.input.target, m.tables.idColumn, { lo: from, hi: range.hi });
    holes = openHoles(lo === range.lo ? inRange : [...holesAround(lo, addId(range.lo, -1), []), ...inRange], low);
    if (holes.length > MAX_HOLES_KEPT) holes = null;
  }
  await ledgerOf(m).on(target).record({ lo, hi: range.hi, rows: verdict.rows, checksum: verdict.checksum, holes, settled: holes !== null && holes.length === 0 });
  s.verifiedUpTo = range.hi;
  s.rangesVerified += 1;
  s.rowsVerified = (BigInt(s.rowsVerified) + BigInt(verdict.rows)).toString();
  if (verdict.repaired) s.rangesRepaired += 1;
}

/**
 * Verification that trails the copy: each chunk just copied is compared and recorded in the
 * ledger on sessions of its own (`sessions`) while the next chunk copies, so it takes the second
 * core rather than wall time. Ranges stay contiguous (from the lowest id on either side, then
 * just after the last one verified), so no id is skipped; the Verify phase covers what is left.
 */
export function trailingVerify(m: Migration, sessions: { source: SqlConnection; target: SqlConnection }): TrailingVerify {
  const tables: CopyTables = { ...m.tables, source: sessions.source, target: sessions.target };
  const on = { ...m, source: sessions.source, target: sessions.target, tables } as Migration;
  if (byKey(m)) {
    const ledger = keyLedgerOf(m).on(sessions.target);
    return async (hi: Id) => {
      await verifyKeysUpTo(m, tables, ledger, hi);
    };
  }
  return async (hi: Id) => {
    while (m.state.verifiedUpTo === null || compareIds(m.state.verifiedUpTo, hi) < 0) {
      const range = await nextVerifyRange(on, m.state.verifiedUpTo, hi);
      if (range === null || compareIds(range.lo, range.hi) > 0) return;
      const low = await lowWaterNow(m, sessions.source);
      await recordVerified(m, await verifyRange(tables, range), low, sessions.target);
    }
  };
}

/**
 * Compares source and target range by range (count and checksum) over every id copied, in
 * contiguous ranges so no id is skipped, and records each range in the ledger. A range that
 * differs is copied again and compared once more; one still wrong fails. Returns true when
 * everything copied is verified, false when the time budget ran out first, or the throttle's answer.
 */
export async function verifyCopied(m: Migration): Promise<boolean | LoopState> {
  const s = m.state;
  if (byKey(m)) return verifyCopiedKeys(m);
  while (s.copiedUpTo !== null && (s.verifiedUpTo === null || compareIds(s.verifiedUpTo, s.copiedUpTo) < 0)) {
    if (!timeLeft(m)) return false;
    const range = await nextVerifyRange(m, s.verifiedUpTo, s.copiedUpTo);
    if (range === null) break;
    const decision = await checkThrottle(m);
    if (decision.throttled) return outcomeState(m, { kind: 'throttled', reason: decision.reason, waitSeconds: decision.waitSeconds });
    const started = m.deps.now();
    const low = await lowWaterNow(m, m.source);
    const verdict = await verifyRange(m.tables, range);
    await recordVerified(m, verdict, low);
    resizeChunk(m, m.deps.now() - started);
    await save(m);
    report(m, `verified ids ${verdict.range.lo}..${verdict.range.hi}: ${verdict.rows} rows equal${verdict.repaired ? ' after a re-copy' : ''}`);
  }
  return true;
}

/** verifyCopied of a migration copied by another key than one integer id (see key-spans.ts). */
async function verifyCopiedKeys(m: Migration): Promise<boolean | LoopState> {
  const upTo = m.state.copiedUpTo;
  if (upTo === null) return true;
  let throttled: LoopState | null = null;
  const through = await verifyKeysUpTo(m, m.tables, keyLedgerOf(m), upTo, async (verdict, millis) => {
    resizeChunk(m, millis);
    await save(m);
    report(m, `verified ${describeKeys(m.tables, verdict.range)}: ${verdict.now.rowCount} rows equal${verdict.repaired ? ' after a re-copy' : ''}${verdict.theirs ? ` (and ${verdict.theirs} of the application's own in the target)` : ''}`);
    if (!timeLeft(m)) return false;
    const decision = await checkThrottle(m);
    if (decision.throttled) throttled = await outcomeState(m, { kind: 'throttled', reason: decision.reason, waitSeconds: decision.waitSeconds });
    return !decision.throttled;
  });
  return throttled ?? through;
}

/** Verifies every id copied before any approval is asked for. */
export async function verify(event: TaskEvent, deps: TaskDeps): Promise<LoopState> {
  const m = await openMigration(event, deps);
  const result = await verifyCopied(m);
  if (result === false) return loopState(m, { done: false });
  if (result !== true) return result;
  await save(m, 'cutover-approval');
  report(m, `verified ${m.state.rangesVerified} ranges, ${m.state.rowsVerified} rows, up to ${byKey(m) ? 'key' : 'id'} ${m.state.copiedUpTo ?? '(none)'} (${m.state.rangesRepaired} repaired by a re-copy)`);
  return loopState(m, { done: true });
}
