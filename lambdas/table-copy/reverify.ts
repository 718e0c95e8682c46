import type { TaskDeps } from '../core/ports/task-deps.ts';
import { VerificationFailed } from '../core/errors.ts';
import type { LedgerEntry } from '../core/tables/ledger.ts';
import { lookAgain, type Look } from '../core/tables/reverify-span.ts';
import { CheckpointStore } from '../core/checkpoints.ts';
import { describeReverify, endPass, freshReverify, noteLook, startPass, unrecordedOf, writeReverify, type ReverifyDifference, type ReverifyRecord } from '../core/tables/reverify-record.ts';
import { describeKeys, lookAtSpan } from '../core/tables/key-spans.ts';
import { spanRange } from '../core/tables/ledger.ts';
import { byKey, checkThrottle, keyLedgerOf, ledgerOf, MACHINE, notice, openMigration, report, timeLeft, type Migration, type TaskEvent, type TableCopyState } from './open-migration.ts';

/**
 * While the cut-over approval is pending (it may wait days), the ranges verified earlier are
 * checked again, span by span of the delivery ledger, pass after pass at `reverify.everySeconds`
 * (what one span can show, and when it is repaired: core/tables/reverify-span.ts).
 */
const SPANS_PER_READ = 50;

/** A span written again from the source: the ledger says what it holds now, and the operator is told. */
async function recordRepair(m: Migration, span: LedgerEntry, look: Extract<Look, { kind: 'repaired' }>): Promise<void> {
  await ledgerOf(m).record({ ...span, rows: look.rows, checksum: look.checksum.checksum, holes: look.holes, settled: look.holes?.length === 0 || span.settled });
  notice(m, `re-verification: ids ${span.lo}..${span.hi} changed in ${m.input.source.table} after they were verified, and were written again to ${m.input.target.table} (untouched there since)`);
}

/**
 * One step of the re-verification beside a pending cut-over approval, acting for the execution
 * that waits (`execution` is its id): checks spans until the time budget is spent, the throttle
 * says wait, or a pass ends; starts a new pass when the last ended `reverify.everySeconds` ago.
 * Writes only its own record, and only while the approval is still pending.
 */
export async function reverify(event: TaskEvent, deps: TaskDeps): Promise<{ phase: string; reverify: ReverifyRecord | null; note: string }> {
  const m = await openMigration(event, deps);
  if (m.input.reverify.everySeconds === 0) return { phase: m.phase, reverify: m.state.reverify ?? null, note: describeReverify(null, deps.now(), 0) };
  if (m.phase !== 'cutover-approval') return { phase: m.phase, reverify: m.state.reverify ?? null, note: 'no approval of the cut-over is pending' };
  const r: ReverifyRecord = structuredClone(m.state.reverify) ?? freshReverify();
  if (!startPass(r, deps.now(), m.input.reverify.everySeconds)) return { phase: m.phase, reverify: r, note: describeReverify(r, deps.now()) };
  if (byKey(m)) await reverifyKeys(m, r);
  const ledger = ledgerOf(m);
  while (!byKey(m) && timeLeft(m)) {
    const decision = await checkThrottle(m);
    if (decision.throttled) {
      report(m, 're-verification throttled', decision.reason, decision.waitSeconds);
      break;
    }
    const spans = await ledger.spansAfter(r.cursor, SPANS_PER_READ);
    if (spans.length === 0) {
      endPass(r, deps.now());
      break;
    }
    for (const span of spans) {
      const look = await lookAgain(m.tables, span);
      if (noteLook(r, span, look.kind === 'differs' ? look.detail : null, deps.now()) && look.kind === 'differs') notice(m, `re-verification: ${look.detail}`);
      if (look.kind !== 'differs') {
        r.current.ranges++;
        r.current.rows = (BigInt(r.current.rows) + BigInt(look.rows)).toString();
        if (look.kind === 'late' || look.kind === 'application') r.current.lateRows += look.late;
        if (look.kind === 'application') r.current.changedByApplication++;
        if (look.kind === 'repaired') {
          r.current.repaired++;
          await recordRepair(m, span, look);
        }
      }
      r.cursor = span.lo;
      if (!timeLeft(m)) break;
    }
  }
  if (!(await writeReverify(new CheckpointStore<TableCopyState>(m.target, m.input.target.database, MACHINE), m.input.migrationId, r, m.state.owner))) return { phase: 'moved on', reverify: r, note: 'the approval was decided meanwhile' };
  const note = describeReverify(r, deps.now());
  if (r.cursor === null) notice(m, `re-verification: ${note}`);
  return { phase: m.phase, reverify: r, note };
}

/**
 * The re-verification of a migration copied by another key than one integer id: each span of the
 * key ledger is looked at again (see key-spans.ts); rows that arrived in it are copied, and rows of
 * the old table changed since they were delivered are a difference.
 */
async function reverifyKeys(m: Migration, r: ReverifyRecord): Promise<void> {
  const ledger = keyLedgerOf(m);
  while (timeLeft(m)) {
    const decision = await checkThrottle(m);
    if (decision.throttled) {
      report(m, 're-verification throttled', decision.reason, decision.waitSeconds);
      return;
    }
    const spans = await ledger.after(r.cursor === null ? null : Number(r.cursor), SPANS_PER_READ);
    if (spans.length === 0) {
      endPass(r, m.deps.now());
      return;
    }
    for (const span of spans) {
      const look = await lookAtSpan(m.tables, ledger, span, 'before');
      const difference = look.kind === 'looked' ? look.difference : null;
      if (noteLook(r, spanRange(span), difference, m.deps.now()) && difference) notice(m, `re-verification: ${difference}`);
      if (!difference) {
        r.current.ranges++;
        r.current.rows = (BigInt(r.current.rows) + BigInt(look.kind === 'looked' ? look.rows : span.rows)).toString();
        if (look.kind === 'looked' && look.late) {
          r.current.lateRows += look.late;
          notice(m, `re-verification: ${look.late} rows written late to ${describeKeys(m.tables, spanRange(span))} were copied`);
        }
      }
      r.cursor = String(span.seq);
      if (!timeLeft(m)) return;
    }
  }
}

/** Looks once more at a span of the key ledger the re-verification found different: its words if it still is. */
async function stillDifferentKeys(m: Migration, d: ReverifyDifference): Promise<string | null> {
  const ledger = keyLedgerOf(m);
  const span = await ledger.endingAt(d.hi);
  if (!span) return null;
  const look = await lookAtSpan(m.tables, ledger, span, 'before');
  return look.kind === 'looked' ? look.difference : null;
}

/**
 * Before the cut-over flags: a difference the re-verification recorded that is still there when
 * looked at once more refuses the cut-over, naming the ids, so no change made in the old table is
 * left behind. One that went away (or was repaired) lets it go on.
 */
export async function refuseIfStillDifferent(m: Migration): Promise<void> {
  const r = m.state.reverify;
  const found = r?.differences ?? [];
  const unrecorded = unrecordedOf(r);
  if (unrecorded > 0) {
    throw new VerificationFailed(
      `the cut-over flags were not set: while the approval waited, re-verification found more spans of ${m.input.source.table} changed after they were verified than it keeps (${found.length} named, ${unrecorded} more): ` +
        `${found.slice(0, 3).map((d) => d.detail).join('; ')}. Stop whatever still writes ${m.input.source.table}, make ${m.input.target.table}'s rows of those ids right, then start the execution again: it asks for the approval again and looks at every span once more.`,
    );
  }
  if (found.length === 0) return;
  const ledger = ledgerOf(m);
  const still: string[] = [];
  for (const d of found) {
    if (byKey(m)) {
      const words = await stillDifferentKeys(m, d);
      if (words) still.push(words);
      continue;
    }
    // table-copy's spans are of ids, each recorded from its first id
    if (d.lo === null) continue;
    const [span] = await ledger.overlapping(d.lo, d.lo);
    if (!span) continue;
    const look = await lookAgain(m.tables, span);
    if (look.kind === 'differs') still.push(look.detail);
    if (look.kind === 'repaired') await recordRepair(m, span, look);
  }
  if (still.length === 0) return;
  throw new VerificationFailed(
    `the cut-over flags were not set: while the approval waited, re-verification found rows of ${m.input.source.table} that changed after they were verified, and they still differ: ` +
      `${still.slice(0, 5).join('; ')}${still.length > 5 ? `; and ${still.length - 5} more spans` : ''}. ` +
      `The cut-over would leave those changes behind. Stop whatever still writes ${m.input.source.table}, make ${m.input.target.table}'s rows of those ids right, then start the execution again: it asks for the approval again and looks once more.`,
  );
}
