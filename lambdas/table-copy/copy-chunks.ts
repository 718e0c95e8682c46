import type { TaskDeps } from '../core/ports/task-deps.ts';
import { compareIds } from '../core/ids.ts';
import { idBounds } from '../core/tables/copier.ts';
import { copyUntil, loopState, openMigration, outcomeState, report, save, type CopyOutcome, type LoopState, type Migration, type TaskEvent } from './open-migration.ts';
import { trailingVerify } from './verify.ts';

/**
 * Copies source ids up to the initial copy's end (rangeMax), each chunk verified and recorded in
 * the ledger on sessions of its own while the next one copies; with `until`, no chunk starts after it.
 */
export async function copyInitial(m: Migration, until?: number): Promise<CopyOutcome> {
  const { rangeMax } = m.state;
  if (rangeMax === null) return { kind: 'caught-up' };
  const source = await m.deps.sql.connectDedicated(m.input.source.connection);
  try {
    const target = await m.deps.sql.connectDedicated(m.input.target.connection);
    try {
      return await copyUntil(m, rangeMax, { verify: trailingVerify(m, { source, target }), until });
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
}

/**
 * The initial copy of [rangeMin, rangeMax], chunk after chunk, until the time budget is spent.
 * The Verify phase then covers only what the catch-up brought.
 */
export async function copyChunks(event: TaskEvent, deps: TaskDeps): Promise<LoopState> {
  const m = await openMigration(event, deps);
  const outcome = await copyInitial(m);
  if (outcome.kind !== 'caught-up') return outcomeState(m, outcome);
  // A source whose highest id has not moved since Preflight received no row all along: its quiet
  // period began then. Otherwise it begins now, and the catch-up waits it out.
  const { max } = await idBounds(m.source, m.input.source, m.tables.idColumn);
  const untouched = max === null ? m.state.rangeMax === null : m.state.rangeMax !== null && compareIds(max, m.state.rangeMax) === 0;
  m.state.quietSince = untouched ? m.state.startedAt : new Date(deps.now()).toISOString();
  await save(m, 'catch-up');
  report(m, `initial copy done up to id ${m.state.copiedUpTo ?? '(empty source)'}, verified up to ${m.state.verifiedUpTo ?? '(none)'}`);
  return loopState(m, { done: true });
}
