import type { TaskDeps } from '../core/ports/task-deps.ts';
import { copyUntil, loopState, openMigration, outcomeState, report, save, type LoopState, type TaskEvent } from './open-migration.ts';
import { trailingVerify } from './verify.ts';

/**
 * The initial copy of [rangeMin, rangeMax], chunk after chunk, until the time budget is spent.
 * Each chunk is verified and recorded in the ledger, on sessions of its own, while the next one
 * copies; the Verify phase then covers only what the catch-up brought.
 */
export async function copyChunks(event: TaskEvent, deps: TaskDeps): Promise<LoopState> {
  const m = await openMigration(event, deps);
  const { rangeMax } = m.state;
  const source = await deps.sql.connectDedicated(m.input.source.connection);
  const target = await deps.sql.connectDedicated(m.input.target.connection).catch(async (err) => {
    await source.close();
    throw err;
  });
  try {
    const outcome = rangeMax === null ? ({ kind: 'caught-up' } as const) : await copyUntil(m, rangeMax, { verify: trailingVerify(m, { source, target }) });
    if (outcome.kind !== 'caught-up') return outcomeState(m, outcome);
  } finally {
    await Promise.all([source.close(), target.close()]);
  }
  m.state.quietSince = new Date(deps.now()).toISOString();
  await save(m, 'catch-up');
  report(m, `initial copy done up to id ${m.state.copiedUpTo ?? '(empty source)'}, verified up to ${m.state.verifiedUpTo ?? '(none)'}`);
  return loopState(m, { done: true });
}
