import type { TaskDeps } from '../core/ports/task-deps.ts';
import { flagValues } from '../core/ports/flags.ts';
import { refuseIfStillDifferent } from './reverify.ts';
import { DatabaseError } from '../core/errors.ts';
import { openCopyWindow, windowLock } from '../core/tables/copy-window.ts';
import { byKey, loopState, openMigration, report, save, type LoopState, type Migration, type Phase, type TaskEvent } from './open-migration.ts';

/** Errors of a server that will not make the window's triggers: no TRIGGER privilege (1142), a binary log without SUPER or log_bin_trust_function_creators (1419). */
const TRIGGERS_REFUSED = new Set([1142, 1419]);

/**
 * Opens the revert window on the new table (see copy-window.ts) unless the input says not to, the
 * key is not one integer id, or it is open already; what it did, in words (null: nothing to say).
 * A server that refuses the triggers is no reason to stop: the revert then compares every span,
 * which the checkpoint and the run's report say.
 */
async function openWindow(m: Migration): Promise<string | null> {
  if (!m.input.revertWindow || byKey(m) || (m.state.window && 'openedAt' in m.state.window)) return null;
  const t = m.input.target;
  // the application's inserts take ids from the AUTO_INCREMENT RaiseAutoIncrement set, above every id of the old table's
  const insertsFrom = m.state.autoIncrement;
  try {
    await openCopyWindow(m.target, m.input.migrationId, t, m.tables.idColumn, insertsFrom === null ? null : BigInt(insertsFrom), windowLock(m.deps.stopping));
  } catch (err) {
    if (!(err instanceof DatabaseError) || !TRIGGERS_REFUSED.has(err.errno ?? 0)) throw err;
    const words = err.message.replace(/^[^:]*: statement failed: /, '');
    m.state.window = { refused: words };
    await save(m);
    return `no revert window: the server refused ferry's triggers on ${t.database}.${t.table} (${words}); a revert will compare every span of the ledger (GRANT TRIGGER, and on a server with a binary log log_bin_trust_function_creators = 1, to have one)`;
  }
  m.state.window = { openedAt: new Date(m.deps.now()).toISOString(), insertsFrom };
  await save(m);
  const inserts = insertsFrom === null ? ' (its inserts are found above the ledger: the table has no AUTO_INCREMENT)' : ` and inserts from id ${insertsFrom} up`;
  return `revert window open: until the cleanup, triggers on ${t.database}.${t.table} log the id of each row the application updates or deletes there${inserts}, so ferry revert compares only the spans they fall in`;
}

/** Sets the flags the input gives for `which`, then records the phase that follows. */
async function applyFlags(event: TaskEvent, deps: TaskDeps, which: 'copy' | 'cutover', next: Phase): Promise<LoopState> {
  const m = await openMigration(event, deps);
  // Nothing changed in the old table since verification is left behind by the cut-over.
  if (which === 'cutover' && m.phase === 'cutover-approval') await refuseIfStillDifferent(m);
  const values = m.input.flags[which];
  // What a revert sets back: recorded once, before the flags change (a retry after the flip must not take the new values for the old).
  if (which === 'cutover' && !m.state.flagsBefore) {
    m.state.flagsBefore = await flagValues(deps.flags, m.input.migrationId, Object.keys(values));
    await save(m);
  }
  // The revert window before the copy flags: no write of the application to the new table precedes it.
  const window = which === 'copy' ? await openWindow(m) : null;
  await deps.flags.set(m.input.migrationId, values);
  // The sweep that follows the cut-over waits for the old table to be quiet from here on.
  if (which === 'cutover' && m.phase !== next) m.state.quietSince = new Date(deps.now()).toISOString();
  const names = Object.entries(values).map(([k, v]) => `${k}=${v}`).join(', ');
  await save(m, next);
  report(m, `${names ? `flags of phase ${which} set: ${names}` : `no flags for phase ${which}`}${window ? `; ${window}` : ''}`);
  return loopState(m, { done: true });
}

/** "Write new, read both": the application starts using the target table. */
export const setCopyFlags = (event: TaskEvent, deps: TaskDeps) => applyFlags(event, deps, 'copy', 'copy');

/** "Read only new": runs only after the cutover approval; the sweep follows. */
export const setCutoverFlags = (event: TaskEvent, deps: TaskDeps) => applyFlags(event, deps, 'cutover', 'sweep');
