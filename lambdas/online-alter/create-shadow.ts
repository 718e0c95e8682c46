import type { TaskDeps } from '../core/ports/task-deps.ts';
import { qualified } from '../core/identifiers.ts';
import { idBounds } from '../core/tables/copier.ts';
import { dropTriggerSql, shadowNames, triggerSql } from '../core/tables/shadow.ts';
import { loopState, report, save } from '../core/tables/chunked-copy.ts';
import { openAlter, sharedColumns, type LoopState } from './open-alter.ts';
import { inspectTable } from '../core/tables/inspector.ts';

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
  const { shadow } = shadowNames(t);
  const conn = m.source;
  for (const sql of dropTriggerSql(input.migrationId, t)) await conn.execute(sql);
  await conn.execute(`DROP TABLE IF EXISTS ${qualified(shadow)}`);
  await conn.execute(`CREATE TABLE ${qualified(shadow)} LIKE ${qualified(t)}`);
  await conn.execute(`ALTER TABLE ${qualified(shadow)} ${input.alter}`);
  const info = (await inspectTable(conn, t))!;
  const columns = await sharedColumns(info, conn);
  for (const sql of triggerSql(input.migrationId, t, shadow, m.tables.idColumn, columns)) await conn.execute(sql);
  const bounds = await idBounds(conn, t, m.tables.idColumn);
  m.state.rangeMin = bounds.min;
  m.state.rangeMax = bounds.max;
  await save(m, 'copy');
  report(m, `shadow ${shadow.table} created with "${input.alter}"; triggers capture changes; copying ids ${bounds.min ?? '-'}..${bounds.max ?? '-'}`);
  return loopState(m, { done: true });
}
