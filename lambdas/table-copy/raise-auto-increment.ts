import type { TaskDeps } from '../core/ports/task-deps.ts';
import { idBounds } from '../core/tables/copier.ts';
import { autoIncrementOf } from '../core/tables/inspector.ts';
import { setAutoIncrement } from '../core/tables/table-writes.ts';
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
  const current = await autoIncrementOf(m.target, input.target);
  if (current === null) {
    report(m, `${input.target.table} has no AUTO_INCREMENT column: nothing to raise`);
  } else if (BigInt(current) < wanted) {
    await setAutoIncrement(m.target, input.target, wanted);
    report(m, `target AUTO_INCREMENT raised from ${current} to ${wanted}`);
  }
  m.state.autoIncrement = current === null ? null : (BigInt(current) < wanted ? wanted : BigInt(current)).toString();
  await save(m);
  return loopState(m, { done: true });
}
