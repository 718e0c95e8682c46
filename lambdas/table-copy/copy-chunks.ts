import type { TaskDeps } from '../core/ports/task-deps.ts';
import { compareIds, type Id } from '../core/ids.ts';
import { InvalidInput } from '../core/errors.ts';
import { idBounds } from '../core/tables/copier.ts';
import { byKey, copyUntil, loopState, openMigration, outcomeState, partitionsOf, report, save, type CopyOutcome, type LoopState, type Migration, type TaskEvent } from './open-migration.ts';
import { lowWaterNow, trailingVerify } from './verify.ts';

/**
 * Copies source ids up to `upTo` (the initial copy's end, rangeMax, unless told otherwise), each
 * chunk verified and recorded in the ledger on sessions of its own while the next ones copy;
 * the first chunk starts once the id clock reaches back far enough (Preflight takes its first
 * sample), so a writer that begins during the copy is bounded by it (see horizon.ts) and the
 * holes below it are final, however long that writer stays open;
 * with `until`, no chunk starts after it. With `verifyToEnd`, a copy that is through also verifies
 * what is left up to `upTo` (ids that hold no row included), so the verified ranges reach it.
 */
export async function copyInitial(m: Migration, options: { until?: number; upTo?: Id; verifyToEnd?: boolean } = {}): Promise<CopyOutcome> {
  const upTo = options.upTo ?? m.state.rangeMax;
  if (upTo === null) return { kind: 'caught-up' };
  const source = await m.deps.sql.connectDedicated(m.input.source.connection);
  try {
    const target = await m.deps.sql.connectDedicated(m.input.target.connection);
    try {
      await lowWaterNow(m, source);
      const verify = trailingVerify(m, { source, target });
      const outcome = await copyUntil(m, upTo, { verify, until: options.until });
      if (outcome.kind === 'caught-up' && options.verifyToEnd) await verify(upTo);
      return outcome;
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
}

/**
 * The initial copy is through: the catch-up comes next. A source whose highest id has not moved
 * since Preflight received no row all along: its quiet period began then. Otherwise it begins
 * now, and the catch-up waits it out.
 */
export async function initialCopyDone(m: Migration): Promise<LoopState> {
  // Another key than one integer id may have received rows anywhere: its quiet period starts now.
  let untouched = false;
  if (!byKey(m)) {
    const { max } = await idBounds(m.source, m.input.source, m.tables.idColumn);
    untouched = max === null ? m.state.rangeMax === null : m.state.rangeMax !== null && compareIds(max, m.state.rangeMax) === 0;
  }
  m.state.quietSince = untouched ? m.state.startedAt : new Date(m.deps.now()).toISOString();
  await save(m, 'catch-up');
  report(m, `initial copy done up to ${byKey(m) ? 'key' : 'id'} ${m.state.copiedUpTo ?? '(empty source)'}, verified up to ${m.state.verifiedUpTo ?? '(none)'}`);
  return loopState(m, { done: true });
}

/**
 * The initial copy of [rangeMin, rangeMax] in one stream, chunk after chunk, until the time budget
 * is spent. The Verify phase then covers only what the catch-up brought.
 */
export async function copyChunks(event: TaskEvent, deps: TaskDeps): Promise<LoopState> {
  const m = await openMigration(event, deps);
  const planned = await partitionsOf(m).all();
  if (planned.length > 0) {
    throw new InvalidInput('partitions', `the initial copy of "${m.input.migrationId}" was planned as ${planned.length} partitions and is under way in them; run it again with "partitions" of 2 or more (how many copy at once) to finish it`);
  }
  const outcome = await copyInitial(m);
  if (outcome.kind !== 'caught-up') return outcomeState(m, outcome);
  return initialCopyDone(m);
}
