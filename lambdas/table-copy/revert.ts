import type { TaskDeps } from '../core/ports/task-deps.ts';
import { InvalidInput } from '../core/errors.ts';
import { setFlagsBack } from '../core/ports/flags.ts';
import { loopState, openMigration, report, save, type LoopState, type TaskEvent } from './open-migration.ts';

/**
 * The revert of a table-copy, asked instead of the cleanup (`ferry revert`): the cut-over flags go
 * back to their values before the cut-over (recorded by SetCutoverFlags; a flag not set then is
 * removed). With the copy flags still on, the application writes the new table and reads both, as
 * it did while the cut-over approval waited: every row it wrote since the copy flags is in the new
 * table, which it still reads, and nothing is deleted from either table. Then phase `reverted`; a
 * run of the same input asks for the cut-over again.
 */
export async function revert(event: TaskEvent & { cause?: string | null }, deps: TaskDeps): Promise<LoopState> {
  const m = await openMigration(event, deps);
  if (m.phase === 'reverted') return loopState(m, { done: true });
  if (m.phase !== 'revert') {
    if (m.phase !== 'cleanup-approval') throw new InvalidInput('migrationId', `${m.input.migrationId} is in phase ${m.phase}: only a migration waiting for its cleanup approval can be reverted`);
    if (!m.state.flagsBefore) {
      throw new InvalidInput('migrationId', `the flags' values before the cut-over of ${m.input.migrationId} were not recorded (it was cut over by an earlier ferry): set them back by hand (ferry set, or the parameters)`);
    }
    m.state.revert = { askedBy: event.cause ?? null, at: new Date(deps.now()).toISOString() };
    await save(m, 'revert');
  }
  const said = await setFlagsBack(deps.flags, m.input.migrationId, m.state.flagsBefore!);
  await save(m, 'reverted');
  report(m, `reverted: the cut-over flags are back to their values before it: ${said}; ${m.input.target.table} keeps every row, and the application reads both tables again`);
  return loopState(m, { done: true });
}
