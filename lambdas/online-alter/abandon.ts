import type { TaskDeps } from '../core/ports/task-deps.ts';
import { CheckpointStore } from '../core/checkpoints.ts';
import { dropShadow, shadowNames } from '../core/tables/shadow.ts';
import { MACHINE, parseOnlineAlterInput } from './open-alter.ts';

/**
 * After a rejected cut-over: drops the triggers and the shadow and forgets the checkpoint, leaving
 * the table exactly as it was. A later run with the same input starts from the beginning.
 */
export async function abandonAlter(event: { migration: unknown }, deps: TaskDeps): Promise<{ abandoned: true }> {
  const input = parseOnlineAlterInput(event.migration);
  const t = input.table;
  const conn = await deps.sql.connect(t.connection);
  await dropShadow(conn, input.migrationId, t);
  await new CheckpointStore(conn, t.database, MACHINE).remove(input.migrationId);
  deps.report({ migrationId: input.migrationId, phase: 'abandoned', done: '0', total: null, note: `triggers and ${shadowNames(t).shadow.table} dropped; ${t.table} is as it was`, throttle: null });
  return { abandoned: true };
}
