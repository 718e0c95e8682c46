import type { TaskDeps } from '../core/ports/task-deps.ts';
import { loopState, openMigration, report, save, type LoopState, type Phase, type TaskEvent } from './open-migration.ts';

/** Sets the flags the input gives for `which`, then records the phase that follows. */
async function applyFlags(event: TaskEvent, deps: TaskDeps, which: 'copy' | 'cutover', next: Phase): Promise<LoopState> {
  const m = await openMigration(event, deps);
  const values = m.input.flags[which];
  await deps.flags.set(m.input.migrationId, values);
  const names = Object.entries(values).map(([k, v]) => `${k}=${v}`).join(', ');
  await save(m, next);
  report(m, names ? `flags of phase ${which} set: ${names}` : `no flags for phase ${which}`);
  return loopState(m, { done: true });
}

/** "Write new, read both": the application starts using the target table. */
export const setCopyFlags = (event: TaskEvent, deps: TaskDeps) => applyFlags(event, deps, 'copy', 'copy');

/** "Read only new": runs only after the cutover approval. */
export const setCutoverFlags = (event: TaskEvent, deps: TaskDeps) => applyFlags(event, deps, 'cutover', 'cleanup-approval');
