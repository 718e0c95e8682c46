import type { TaskDeps } from '../core/ports/task-deps.ts';
import { flagValues } from '../core/ports/flags.ts';
import { refuseIfStillDifferent } from './reverify.ts';
import { loopState, openMigration, report, save, type LoopState, type Phase, type TaskEvent } from './open-migration.ts';

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
  await deps.flags.set(m.input.migrationId, values);
  // The sweep that follows the cut-over waits for the old table to be quiet from here on.
  if (which === 'cutover' && m.phase !== next) m.state.quietSince = new Date(deps.now()).toISOString();
  const names = Object.entries(values).map(([k, v]) => `${k}=${v}`).join(', ');
  await save(m, next);
  report(m, names ? `flags of phase ${which} set: ${names}` : `no flags for phase ${which}`);
  return loopState(m, { done: true });
}

/** "Write new, read both": the application starts using the target table. */
export const setCopyFlags = (event: TaskEvent, deps: TaskDeps) => applyFlags(event, deps, 'copy', 'copy');

/** "Read only new": runs only after the cutover approval; the sweep follows. */
export const setCutoverFlags = (event: TaskEvent, deps: TaskDeps) => applyFlags(event, deps, 'cutover', 'sweep');
