import type { TaskDeps } from '../core/ports/task-deps.ts';
import { CHECKPOINT_TABLE } from '../core/checkpoints.ts';
import { qualified, quoteIdent } from '../core/identifiers.ts';
import { dropTriggerSql, shadowNames } from '../core/tables/shadow.ts';
import { parseOnlineAlterInput } from './open-alter.ts';

/**
 * After a rejected cut-over: drops the triggers and the shadow and forgets the checkpoint, leaving
 * the table exactly as it was. A later run with the same input starts from the beginning.
 */
export async function abandonAlter(event: { migration: unknown }, deps: TaskDeps): Promise<{ abandoned: true }> {
  const input = parseOnlineAlterInput(event.migration);
  const t = input.table;
  const conn = await deps.sql.connect(t.connection);
  for (const sql of dropTriggerSql(input.migrationId, t)) await conn.execute(sql);
  await conn.execute(`DROP TABLE IF EXISTS ${qualified(shadowNames(t).shadow)}`);
  await conn.execute(`DELETE FROM ${quoteIdent(t.database)}.${quoteIdent(CHECKPOINT_TABLE)} WHERE migration_id = ?`, [input.migrationId]);
  deps.report({ migrationId: input.migrationId, phase: 'abandoned', done: '0', total: null, note: `triggers and ${shadowNames(t).shadow.table} dropped; ${t.table} is as it was`, throttle: null });
  return { abandoned: true };
}
