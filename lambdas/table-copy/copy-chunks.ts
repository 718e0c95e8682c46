import type { TaskDeps } from '../core/ports/task-deps.ts';
import { copyUntil, loopState, openMigration, outcomeState, report, save, type LoopState, type TaskEvent } from './open-migration.ts';

/** The initial copy of [rangeMin, rangeMax], chunk after chunk, until the time budget is spent. */
export async function copyChunks(event: TaskEvent, deps: TaskDeps): Promise<LoopState> {
  const m = await openMigration(event, deps);
  const { rangeMax } = m.state;
  const outcome = rangeMax === null ? ({ kind: 'caught-up' } as const) : await copyUntil(m, rangeMax);
  if (outcome.kind !== 'caught-up') return outcomeState(m, outcome);
  m.state.quietSince = new Date(deps.now()).toISOString();
  await save(m, 'catch-up');
  report(m, `initial copy done up to id ${m.state.copiedUpTo ?? '(empty source)'}`);
  return loopState(m, { done: true });
}
