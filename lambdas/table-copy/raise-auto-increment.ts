import type { TaskDeps } from '../core/ports/task-deps.ts';
import { scalar } from '../core/ports/sql.ts';
import { qualified } from '../core/identifiers.ts';
import { idBounds } from '../core/tables/copier.ts';
import { loopState, openMigration, report, save, type LoopState, type TaskEvent } from './open-migration.ts';

/**
 * Moves the target's AUTO_INCREMENT above every id the source holds, plus `idOffset`, so rows the
 * application writes to the new table never take an id a copied row needs. Only ever raises it.
 */
export async function raiseAutoIncrement(event: TaskEvent, deps: TaskDeps): Promise<LoopState> {
  const m = await openMigration(event, deps);
  const { input } = m;
  const { max } = await idBounds(m.source, input.source, m.tables.idColumn);
  const wanted = (max === null ? 0n : BigInt(max)) + BigInt(input.idOffset) + 1n;
  const current = await scalar(
    m.target,
    'SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
    [input.target.database, input.target.table],
  );
  if (current === null) {
    report(m, `${input.target.table} has no AUTO_INCREMENT column: nothing to raise`);
  } else if (BigInt(current) < wanted) {
    // A DDL value cannot be a placeholder; `wanted` is a BigInt computed here, never text from the input.
    await m.target.execute(`ALTER TABLE ${qualified(input.target)} AUTO_INCREMENT = ${wanted.toString()}`);
    report(m, `target AUTO_INCREMENT raised from ${current} to ${wanted}`);
  }
  m.state.autoIncrement = current === null ? null : (BigInt(current) < wanted ? wanted : BigInt(current)).toString();
  await save(m);
  return loopState(m, { done: true });
}
