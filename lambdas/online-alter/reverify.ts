import type { TaskDeps } from '../core/ports/task-deps.ts';
import { CheckpointStore } from '../core/checkpoints.ts';
import { VerificationFailed } from '../core/errors.ts';
import { highestKey, keyOf } from '../core/tables/copier.ts';
import { checkThrottle, nextVerifyKeys, notice, reached, report, timeLeft, type TaskEvent } from '../core/tables/chunked-copy.ts';
import { describeReverify, endPass, freshReverify, noteLook, startPass, unrecordedOf, writeReverify, type ReverifyRecord } from '../core/tables/reverify-record.ts';
import { MACHINE, openAlter, type AlterMigration, type OnlineAlterState } from './open-alter.ts';
import { verifyAlterRange } from './verify.ts';

/**
 * While the cut-over approval is pending (it may wait days), the table and its shadow are compared
 * again, range by range under one consistent snapshot each, as Verify compares them, pass after pass
 * at `reverify.everySeconds`. The shadow is ferry's until the swap: a range that differs (a write
 * the triggers could not carry, a row changed by hand) is written again from the table and compared
 * again (*repaired*); one still differing after three tries is a difference, and SwapTables, right
 * after the approval, looks at it again and will not swap while it lasts.
 */

/** One step of the re-verification beside the pending cut-over approval, for the execution that waits. */
export async function reverify(event: TaskEvent, deps: TaskDeps): Promise<{ phase: string; reverify: ReverifyRecord | null; note: string }> {
  const m = await openAlter(event, deps);
  if (m.input.alter.reverify.everySeconds === 0) return { phase: m.phase, reverify: m.state.reverify ?? null, note: describeReverify(null, deps.now(), 0) };
  if (m.phase !== 'cutover-approval') return { phase: m.phase, reverify: m.state.reverify ?? null, note: 'no approval of the cut-over is pending' };
  const r: ReverifyRecord = structuredClone(m.state.reverify) ?? freshReverify();
  if (!startPass(r, deps.now(), m.input.alter.reverify.everySeconds)) return { phase: m.phase, reverify: r, note: describeReverify(r, deps.now()) };
  const key = keyOf(m.tables);
  // up to the highest key on either side, as Verify: a row of the shadow above the table's highest is looked at too
  const upTo = await highestKey(m.source, [m.tables.sourceTable, m.tables.targetTable], key);
  while (timeLeft(m)) {
    const decision = await checkThrottle(m);
    if (decision.throttled) {
      report(m, 're-verification throttled', decision.reason, decision.waitSeconds);
      break;
    }
    const range = upTo === null || reached(m, r.cursor, upTo) ? null : await nextVerifyKeys(m, r.cursor, upTo);
    if (range === null) {
      endPass(r, deps.now());
      break;
    }
    try {
      const verdict = await verifyAlterRange(m.source, m.tables, m.input.migrationId, range);
      noteLook(r, range, null, deps.now());
      r.current.ranges++;
      r.current.rows = (BigInt(r.current.rows) + BigInt(verdict.rows)).toString();
      if (verdict.repairs) {
        r.current.repaired++;
        notice(m, `re-verification: ${key.isInteger ? 'ids' : `keys (${key.names})`} ${key.describe(range)} of ${m.tables.targetTable.table} differed from ${m.tables.sourceTable.table} and were written again from it`);
      }
    } catch (err) {
      if (!(err instanceof VerificationFailed)) throw err;
      const detail = err.message.replace(/\.+$/, '');
      if (noteLook(r, range, detail, deps.now())) notice(m, `re-verification: ${detail}`);
    }
    r.cursor = range.hi;
  }
  if (!(await writeReverify(new CheckpointStore<OnlineAlterState>(m.source, m.input.alter.table.database, MACHINE), m.input.migrationId, r, m.state.owner))) return { phase: 'moved on', reverify: r, note: 'the approval was decided meanwhile' };
  const note = describeReverify(r, deps.now());
  if (r.cursor === null) notice(m, `re-verification: ${note}`);
  return { phase: m.phase, reverify: r, note };
}

/** Before the swap: a difference the re-verification recorded that is still there refuses it, naming the ids. */
export async function refuseIfStillDifferent(m: AlterMigration): Promise<void> {
  const r = m.state.reverify;
  const found = r?.differences ?? [];
  const unrecorded = unrecordedOf(r);
  const still: string[] = [];
  for (const d of found) {
    try {
      await verifyAlterRange(m.source, m.tables, m.input.migrationId, d);
    } catch (err) {
      if (!(err instanceof VerificationFailed)) throw err;
      still.push(d.detail);
    }
  }
  if (still.length === 0 && unrecorded === 0) return;
  throw new VerificationFailed(
    `the swap was not made: while the approval waited, re-verification found ranges of ${m.tables.targetTable.table} it could not make equal to ${m.tables.sourceTable.table}` +
      `${unrecorded ? ` (${found.length} named, ${unrecorded} more)` : ''}: ${still.slice(0, 3).join('; ')}. ${m.tables.sourceTable.table} is untouched and serving; ` +
      'fix those rows (or the ALTER), then start the execution again: it asks for the approval again and looks once more.',
  );
}
