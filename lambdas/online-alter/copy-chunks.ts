import type { TaskDeps } from '../core/ports/task-deps.ts';
import { copyUntil, loopState, outcomeState, report, save, type TaskEvent } from '../core/tables/chunked-copy.ts';
import { keyOf } from '../core/tables/copier.ts';
import { openAlter, type LoopState } from './open-alter.ts';
import { trailingVerify } from './verify.ts';

/**
 * Copies the table into its shadow by primary key, chunk after chunk, with share locks on the rows
 * read (so a concurrent delete waits for the chunk and its trigger then removes the copied row) and
 * INSERT IGNORE (so a newer row the triggers already wrote is never overwritten). Each chunk is
 * verified, on a session of its own, while the next one copies.
 */
export async function copyChunks(event: TaskEvent, deps: TaskDeps): Promise<LoopState> {
  const m = await openAlter(event, deps);
  const { rangeMax } = m.state;
  const verifier = await deps.sql.connectDedicated(m.input.source.connection);
  try {
    const outcome = rangeMax === null ? ({ kind: 'caught-up' } as const) : await copyUntil(m, rangeMax, { verify: trailingVerify(m, verifier) });
    if (outcome.kind !== 'caught-up') return outcomeState(m, outcome);
  } finally {
    await verifier.close();
  }
  await save(m, 'verify');
  report(m, `copy done up to ${keyOf(m.tables).isInteger ? 'id' : 'key'} ${m.state.copiedUpTo ?? '(empty table)'}, verified up to ${m.state.verifiedUpTo ?? '(none)'}`);
  return loopState(m, { done: true });
}
