import type { TaskDeps } from '../core/ports/task-deps.ts';
import { compareIds } from '../core/ids.ts';
import { idBounds } from '../core/tables/copier.ts';
import { copyUntil, loopState, openMigration, outcomeState, report, save, type LoopState, type TaskEvent } from './open-migration.ts';

/**
 * Copies the rows written to the source since the initial copy began, until the source has been
 * quiet for `catchUp.quietSeconds`: applications pick up the "write new" flag late, so the old
 * table keeps receiving rows for a while.
 */
export async function catchUp(event: TaskEvent, deps: TaskDeps): Promise<LoopState> {
  const m = await openMigration(event, deps);
  const s = m.state;
  const { max } = await idBounds(m.source, m.input.source, m.tables.idColumn);
  if (max !== null && (s.copiedUpTo === null || compareIds(max, s.copiedUpTo) > 0)) {
    const outcome = await copyUntil(m, max, {
      onRows: (inserted) => {
        if (inserted > 0) s.quietSince = new Date(deps.now()).toISOString();
      },
    });
    if (outcome.kind !== 'caught-up') return outcomeState(m, outcome);
    await save(m);
  }
  const quietFor = (deps.now() - Date.parse(s.quietSince ?? new Date(deps.now()).toISOString())) / 1000;
  const quietSeconds = m.input.catchUp.quietSeconds;
  if (quietFor >= quietSeconds) {
    await save(m, 'verify');
    report(m, `source quiet for ${Math.floor(quietFor)} s: caught up at id ${s.copiedUpTo ?? '(none)'}`);
    return loopState(m, { done: true });
  }
  report(m, `caught up at id ${s.copiedUpTo ?? '(none)'}; waiting for ${quietSeconds} s without new source rows (${Math.floor(quietFor)} s so far)`);
  const untilQuiet = Math.max(1, Math.ceil(quietSeconds - quietFor));
  return loopState(m, { done: false, waitSeconds: Math.min(m.input.catchUp.pollSeconds, untilQuiet) });
}
