import type { TaskDeps } from '../core/ports/task-deps.ts';
import { copyUntil, loopState, outcomeState, report, save, type TaskEvent } from '../core/tables/chunked-copy.ts';
import { openAlter, type LoopState } from './open-alter.ts';

/**
 * Copies the table into its shadow by primary key, chunk after chunk, with share locks on the rows
 * read (so a concurrent delete waits for the chunk and its trigger then removes the copied row) and
 * INSERT IGNORE (so a newer row the triggers already wrote is never overwritten).
 */
export async function copyChunks(event: TaskEvent, deps: TaskDeps): Promise<LoopState> {
  const m = await openAlter(event, deps);
  const { rangeMax } = m.state;
  const outcome = rangeMax === null ? ({ kind: 'caught-up' } as const) : await copyUntil(m, rangeMax);
  if (outcome.kind !== 'caught-up') return outcomeState(m, outcome);
  await save(m, 'verify');
  report(m, `copy done up to id ${m.state.copiedUpTo ?? '(empty table)'}`);
  return loopState(m, { done: true });
}
