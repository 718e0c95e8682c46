import type { TaskDeps } from '../core/ports/task-deps.ts';
import { keyBounds, keyOf } from '../core/tables/copier.ts';
import { createShadow as createShadowTable, shadowNames } from '../core/tables/shadow.ts';
import { loopState, report, save } from '../core/tables/chunked-copy.ts';
import { whoHoldsTheTable } from '../core/tables/app-impact.ts';
import { lockOf, openAlter, type LoopState } from './open-alter.ts';

/**
 * Creates `_<table>_new` like the table, applies the ALTER to it, and starts change capture with
 * AFTER INSERT/UPDATE/DELETE triggers. The copy's range is read only after the triggers exist:
 * CREATE TRIGGER waits for every open transaction on the table, so each row is either below that
 * bound or reaches the shadow through a trigger. Safe to run again after a crash half-way.
 */
export async function createShadow(event: { migration: unknown; state?: { iterations?: number } | null }, deps: TaskDeps): Promise<LoopState> {
  const m = await openAlter(event, deps);
  const input = m.input.alter;
  const t = input.table;
  const mapping = await createShadowTable(m.source, input.migrationId, t, input.alter, keyOf(m.tables).columns.map((c) => c.name), lockOf(input, deps), async (attempt, backoff) =>
    report(
      m,
      `creating the triggers: another session holds a lock on ${t.table} (waited ${input.cutover.lockWaitSeconds} s)${await whoHoldsTheTable(m.source, input.cutover.lockWaitSeconds)}; ` +
        `${t.table} is unchanged and serving; retrying in ${backoff} s (attempt ${attempt})`,
    ),
  );
  const renamed = mapping.source.flatMap((c, i) => (c.toLowerCase() === mapping.target[i]!.toLowerCase() ? [] : [`${c} → ${mapping.target[i]}`]));
  const bounds = await keyBounds(m.source, t, keyOf(m.tables));
  m.state.rangeMin = bounds.min;
  m.state.rangeMax = bounds.max;
  await save(m, 'copy');
  report(m, `shadow ${shadowNames(t).shadow.table} created with "${input.alter}"${renamed.length ? ` (columns renamed: ${renamed.join(', ')})` : ''}; triggers capture changes; copying ${keyOf(m.tables).isInteger ? 'ids' : `keys (${keyOf(m.tables).names})`} ${bounds.min ?? '-'}..${bounds.max ?? '-'}`);
  return loopState(m, { done: true });
}
