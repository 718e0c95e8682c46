import type { TaskDeps } from '../core/ports/task-deps.ts';
import { InvalidInput, RevertRefused } from '../core/errors.ts';
import { setFlagsBack } from '../core/ports/flags.ts';
import { keyAt, keyBounds, keyOf } from '../core/tables/copier.ts';
import { backwards, carryBack, ledgerTop, oldTableLagOf, RowsRefused } from '../core/tables/carry-back.ts';
import { compareRange } from '../core/tables/verifier.ts';
import { copyWindowOpen, lastLogged, loggedSeqs, nextLoggedId } from '../core/tables/copy-window.ts';
import { forgetWindowEntries } from '../core/tables/revert-window.ts';
import { compareIds } from '../core/ids.ts';
import { spanRange, type DeliveryLedger, type KeySpan, type LedgerEntry } from '../core/tables/ledger.ts';
import { idsInHoles } from '../core/tables/sweeper.ts';
import { fillHoles } from '../core/holes.ts';
import type { KeyRange } from '../core/keys.ts';
import { byKey, checkThrottle, keyLedgerOf, ledgerOf, loopState, openMigration, outcomeState, report, save, timeLeft, type CopyRevert, type LoopState, type Migration, type TaskEvent } from './open-migration.ts';

/**
 * The revert of a table-copy, asked instead of the cleanup (`ferry revert`). The application has
 * written only the new table since the copy flags; the revert carries what it wrote there back to
 * the old table, then sets the cut-over flags back:
 *
 * 1. The spans of the delivery ledger that may differ are compared (count and checksum on both
 *    sides): with the revert window (see copy-window.ts), those holding an id its log names; else
 *    every span. A span that differs is made the new table's in the old table (rows the application
 *    inserted, updated or deleted there; see carryBack), and the ledger records what the old table
 *    holds now, so a later run's checks see both sides agree.
 * 2. The new table's rows above the ledger (the application's inserts since the copy flags), up
 *    to its highest key when this step began, are written to the old table a piece at a time, each
 *    recorded in the ledger as delivered.
 * 3. The cut-over flags go back to their values before the cut-over (recorded by SetCutoverFlags; a
 *    flag not set then is removed). The copy flags stay: the application writes the new table and
 *    reads both, as while the cut-over approval waited. Phase `reverted`; a run of the same input
 *    asks for the cut-over again.
 *
 * A row the old table cannot hold (an id past its column's type, a value it cannot take), or a row
 * written to the old table after the sweep where the application's row was to go, refuses the
 * revert before any flag changes (RevertRefused), naming the rows: the cleanup approval is asked
 * for again. What was carried before stays in the old table and in the ledger.
 */

/** Rows of the new table above the ledger written to the old table in one transaction. */
export const CARRY_PIECE = 1000;

/** Ledger spans read at a time. */
const SPANS_PER_READ = 50;

async function refuse(m: Migration, rows: readonly string[]): Promise<never> {
  const [oldT, newT] = [m.input.source.table, m.input.target.table];
  m.state.revert = null;
  await save(m, 'cleanup-approval');
  const message =
    `revert refused: ${oldT} cannot take rows of ${newT}: ${rows.join('; ')}. No flag was changed: the application still reads ${newT} alone. ` +
    `What was carried back before is in ${oldT} and recorded as delivered. Make ${oldT} able to hold those rows (a wider column) and revert again, or approve the cleanup.`;
  report(m, message);
  throw new RevertRefused(message);
}

export async function revert(event: TaskEvent & { cause?: string | null }, deps: TaskDeps): Promise<LoopState> {
  const m = await openMigration(event, deps);
  if (m.phase === 'reverted') return loopState(m, { done: true });
  if (m.phase !== 'revert') {
    if (m.phase !== 'cleanup-approval') throw new InvalidInput('migrationId', `${m.input.migrationId} is in phase ${m.phase}: only a migration waiting for its cleanup approval can be reverted`);
    if (!m.state.flagsBefore) {
      throw new InvalidInput('migrationId', `the flags' values before the cut-over of ${m.input.migrationId} were not recorded (it was cut over by an earlier ferry): set them back by hand (ferry set, or the parameters)`);
    }
    const { broken, ...how } = await fromWindow(m);
    m.state.revert = { askedBy: event.cause ?? null, at: new Date(deps.now()).toISOString(), ...how };
    await save(m, 'revert');
    const compares = how.fromLog
      ? `the spans of the rows the revert window logged (up to entry ${how.logUpTo ?? '(none)'}), then the rows inserted above the ledger`
      : `every span of the ledger, then the rows inserted${broken ? `: ${broken}` : ''}`;
    report(m, `reverting: carrying what the application wrote in ${m.input.target.table} since the copy flags back to ${m.input.source.table} (comparing ${compares}), then the cut-over flags back`);
  }
  const r = m.state.revert!;
  if (!r.carried) {
    try {
      const step = await carry(m, r);
      if (step !== true) return step;
    } catch (err) {
      if (err instanceof RowsRefused) return refuse(m, err.rows);
      throw err;
    }
  }
  const said = await setFlagsBack(deps.flags, m.input.migrationId, m.state.flagsBefore!);
  await save(m, 'reverted');
  report(m, `reverted: ${m.input.source.table} holds every row of ${m.input.target.table} (${r.rowsCarried ?? 0} rows carried back); the cut-over flags are back to their values before it: ${said}; the application reads both tables again`);
  return loopState(m, { done: true });
}

/** Steps 1 and 2, as far as the budget goes: true once done, else the task's answer (come back at once, or after a wait). */
async function carry(m: Migration, r: CopyRevert): Promise<true | LoopState> {
  const back = backwards(m.tables);
  while (!r.spansDone || !r.carried) {
    if (!timeLeft(m)) return loopState(m, { done: false });
    const decision = await checkThrottle(m);
    if (decision.throttled) return outcomeState(m, { kind: 'throttled', reason: decision.reason, waitSeconds: decision.waitSeconds });
    if (!r.spansDone) {
      const compared = r.fromLog ? await loggedSpans(m, r, back) : byKey(m) ? await keySpans(m, r, back) : await idSpans(m, r, back);
      if (compared === 0) {
        r.spansDone = true;
        r.aboveUpTo = (await keyBounds(back.source, back.sourceTable, keyOf(back))).max;
        r.aboveAfter = await ledgerTop(m.target, m.input, keyOf(back));
      }
      await save(m);
      continue;
    }
    if (!(await above(m, r, back))) {
      r.carried = true;
      await save(m);
    }
  }
  return true;
}

/** Whether to stop between spans: the budget is spent, or the throttle says wait (the caller asks it again, and waits). */
async function pausing(m: Migration): Promise<boolean> {
  return !timeLeft(m) || (await checkThrottle(m)).throttled;
}

/** The next spans of a delivery ledger (one integer id), compared and carried; how many. */
async function idSpans(m: Migration, r: CopyRevert, back: ReturnType<typeof backwards>): Promise<number> {
  const ledger = ledgerOf(m);
  const spans = await ledger.spansAfter((r.spansAfter as string | null | undefined) ?? null, SPANS_PER_READ);
  for (const span of spans) {
    const n = await carrySpan(m, r, back, { lo: span.lo, hi: span.hi }, span, (now) => recordIdSpan(ledger, back, span, now));
    r.spansAfter = span.lo;
    if (n) await save(m);
    if (await pausing(m)) break;
  }
  return spans.length;
}

/**
 * Whether the revert goes by the window's log: SetCopyFlags opened the window before the copy flags
 * went on, and its triggers and its log are still there (one dropped by hand meanwhile may
 * have missed writes: every span is compared, and `broken` says why). Its highest entry now bounds
 * what the revert reads of it.
 */
async function fromWindow(m: Migration): Promise<Pick<CopyRevert, 'fromLog' | 'logUpTo'> & { broken?: string }> {
  const w = m.state.window;
  if (!w || !('openedAt' in w)) return { fromLog: false };
  if (w.closedAt) return { fromLog: false, broken: `the revert window was closed at ${w.closedAt}${w.closedBy ? ` by ${w.closedBy}` : ''}` };
  const t = m.input.target;
  if (!(await copyWindowOpen(m.target, m.input.migrationId, t, { inserts: w.insertsFrom != null }))) {
    return { fromLog: false, broken: `the revert window opened at ${w.openedAt} is no longer whole on ${t.database}.${t.table} (a trigger or its log was dropped)` };
  }
  return { fromLog: true, logUpTo: await lastLogged(m.target, m.input.migrationId, t) };
}

/**
 * The next span the window's log names, compared and carried (as every span is without a window,
 * see carrySpan), then the log's entries for it forgotten; false when none is left. Spans go in the
 * order of their ids, each once whatever number of entries names it: the next is the one holding
 * the lowest id the log names (up to logUpTo) above the last span done (`logAfter`). Ids above the
 * ledger are left to the rows above it; one between spans (none, as the ledger is contiguous) is
 * compared alone. The entries forgotten are those read before the span was compared: an entry
 * committed later stays, for a later revert. A run stopped before they are forgotten compares the
 * span again, finds it equal, and goes on.
 */
async function loggedSpan(m: Migration, r: CopyRevert, back: ReturnType<typeof backwards>): Promise<boolean> {
  const t = m.input.target;
  if (r.logUpTo == null) return false;
  const ledger = ledgerOf(m);
  const top = await ledger.top();
  const id = await nextLoggedId(m.target, m.input.migrationId, t, r.logUpTo, r.logAfter ?? null);
  if (id === null || top === null || compareIds(id, top) > 0) return false;
  const span = (await ledger.overlapping(id, id))[0] ?? null;
  const range = span ? { lo: span.lo, hi: span.hi } : { lo: id, hi: id };
  const seqs = await loggedSeqs(m.target, m.input.migrationId, t, r.logUpTo, range, SEQS_PER_SPAN);
  if (span) {
    await carrySpan(m, r, back, range, span, (now) => recordIdSpan(ledger, back, span, now));
  } else {
    const { written } = await carryBack(back, range, { delivered: true });
    r.rowsCarried = (r.rowsCarried ?? 0) + written;
  }
  await forgetWindowEntries(m.target, m.input.migrationId, t, seqs);
  // a span named by more entries than were read is compared again, for the next of them
  if (seqs.length < SEQS_PER_SPAN) r.logAfter = range.hi;
  r.logEntries = (r.logEntries ?? 0) + seqs.length;
  await save(m);
  return true;
}

/** The most entries forgotten after one comparison of a span (a row the application updates very often names it many times). */
const SEQS_PER_SPAN = 50_000;

/** The spans the window's log names, one after another, until none is left (0) or it is time to pause (1). */
async function loggedSpans(m: Migration, r: CopyRevert, back: ReturnType<typeof backwards>): Promise<number> {
  while (await loggedSpan(m, r, back)) if (await pausing(m)) return 1;
  return 0;
}

/** The next spans of a key ledger, compared and carried; how many. */
async function keySpans(m: Migration, r: CopyRevert, back: ReturnType<typeof backwards>): Promise<number> {
  const ledger = keyLedgerOf(m);
  const spans = await ledger.after((r.spansAfter as number | null | undefined) ?? null, SPANS_PER_READ);
  for (const span of spans) {
    const n = await carrySpan(m, r, back, spanRange(span), span, (now) => ledger.update({ seq: span.seq, rows: now.rowCount, checksum: now.checksum }));
    r.spansAfter = span.seq;
    if (n) await save(m);
    if (await pausing(m)) break;
  }
  return spans.length;
}

/**
 * A delivery-ledger span as the old table holds it after a carry: its count and checksum, and its
 * holes without the ids the revert wrote into them (rows of the new table now in both: delivered,
 * not rows of the old table a later run would take for late ones and deliver again).
 */
async function recordIdSpan(ledger: DeliveryLedger, back: ReturnType<typeof backwards>, span: LedgerEntry, now: { rowCount: string; checksum: string }): Promise<void> {
  const filled = span.holes?.length ? await idsInHoles(back.target, back.targetTable, back.idColumn, span.holes) : [];
  await ledger.record({ ...span, rows: now.rowCount, checksum: now.checksum, holes: span.holes === null ? null : fillHoles(span.holes, filled) });
}

/**
 * One span: equal on both sides, nothing is written (the ledger is brought to what both hold when
 * it says otherwise, as after a carry a stopped run did not record); else carried, and recorded.
 */
async function carrySpan(
  m: Migration,
  r: CopyRevert,
  back: ReturnType<typeof backwards>,
  range: KeyRange,
  span: LedgerEntry | KeySpan,
  record: (now: { rowCount: string; checksum: string }) => Promise<void>,
): Promise<number> {
  const seen = await compareRange(back, range);
  let now = seen.target;
  let written = 0;
  if (!seen.equal) ({ written, old: now } = await carryBack(back, range, { delivered: true }));
  r.spansCompared = (r.spansCompared ?? 0) + 1;
  r.rowsCompared = (BigInt(r.rowsCompared ?? '0') + BigInt(now.rowCount)).toString();
  if (written || now.rowCount !== span.rows || now.checksum !== span.checksum) await record(now);
  if (written) {
    r.rowsCarried = (r.rowsCarried ?? 0) + written;
    report(m, `reverting: ${keyOf(back).describe(range)}: ${written} rows the application wrote in ${m.input.target.table} carried back to ${m.input.source.table}`);
  }
  return written;
}

/** The next piece of the new table's rows above the ledger, carried and recorded as delivered; false when none is left. */
async function above(m: Migration, r: CopyRevert, back: ReturnType<typeof backwards>): Promise<boolean> {
  const key = keyOf(back);
  if (r.aboveUpTo == null || r.aboveAfter === r.aboveUpTo) return false;
  const after = r.aboveAfter ?? null;
  const rest: KeyRange = after === null ? { lo: null, hi: r.aboveUpTo } : { lo: after, loExcluded: true, hi: r.aboveUpTo };
  // a piece begun by a run that stopped before recording it: what the old table holds there, ferry wrote
  const resumed = r.abovePiece ?? null;
  if (resumed === null && (await keyAt(back.source, back.sourceTable, key, rest, 0)) === null) return false;
  const hi = resumed ?? (await keyAt(back.source, back.sourceTable, key, rest, CARRY_PIECE - 1)) ?? r.aboveUpTo;
  const piece: KeyRange = { ...rest, hi };
  if (resumed === null) {
    r.abovePiece = hi;
    await save(m);
  }
  // the window's entries naming the piece's ids, read before it is carried (see loggedSpan)
  const lo = !key.isInteger ? null : after === null ? m.state.idFloor : (BigInt(after) + 1n).toString();
  const logged = r.fromLog && r.logUpTo != null && lo !== null ? await loggedSeqs(m.target, m.input.migrationId, m.input.target, r.logUpTo, { lo, hi }, SEQS_PER_SPAN) : [];
  const { written, old } = await carryBack(back, piece, { delivered: resumed !== null });
  if (byKey(m)) {
    const ledger = keyLedgerOf(m);
    const last = await ledger.last();
    await ledger.append({ seq: (last?.seq ?? 0) + 1, lo: after, hi, rows: old.rowCount, checksum: old.checksum });
  } else {
    await ledgerOf(m).record({ lo: lo!, hi, rows: old.rowCount, checksum: old.checksum, holes: [], settled: true });
  }
  if (logged.length) {
    await forgetWindowEntries(m.target, m.input.migrationId, m.input.target, logged);
    r.logEntries = (r.logEntries ?? 0) + logged.length;
  }
  r.aboveAfter = hi;
  r.abovePiece = null;
  r.rowsCarried = (r.rowsCarried ?? 0) + written;
  r.rowsCompared = (BigInt(r.rowsCompared ?? '0') + BigInt(old.rowCount)).toString();
  await save(m);
  report(m, `reverting: ${written} rows the application inserted in ${m.input.target.table} (${key.describe(piece)}) written to ${m.input.source.table}`);
  return true;
}

/**
 * Beside a pending cleanup approval, on AWS (see scheduledReverify): how far the old table trails
 * the new one, which a revert would carry back (see oldTableLag). Reads only.
 */
export async function oldTableBehind(event: TaskEvent, deps: TaskDeps): Promise<{ note: string }> {
  const m = await openMigration(event, deps);
  if (m.phase !== 'cleanup-approval') return { note: `no cleanup approval is pending (phase ${m.phase})` };
  return { note: await oldTableLagOf(m.target, m.input, keyOf(m.tables)) };
}
