import type { TaskDeps } from '../core/ports/task-deps.ts';
import { sweep as sweepLedger, type SweepOutcome } from '../core/tables/sweeper.ts';
import { sweepKeys } from '../core/tables/key-spans.ts';
import { byKey, keyLedgerOf, ledgerOf, loopState, openMigration, outcomeState, report, save, type LoopState, type Migration, type TaskEvent } from './open-migration.ts';

/** A sweep that is not finished, as the task's answer: wait and come back, or go on at once. */
export function sweepState(m: Migration, outcome: Exclude<SweepOutcome, { kind: 'caught-up' }>): Promise<LoopState> | LoopState {
  if (outcome.kind !== 'wait') return outcomeState(m, outcome);
  report(m, outcome.note);
  return loopState(m, { done: false, waitSeconds: outcome.seconds });
}

/**
 * After the cut-over flags flip and before the cleanup approval is asked for: every row the old
 * table received that is not in the target yet — committed late below the copied ids, or written
 * by servers that have not read the new flags — is copied, until the old table has been quiet.
 */
export async function sweep(event: TaskEvent, deps: TaskDeps): Promise<LoopState> {
  const m = await openMigration(event, deps);
  if (m.phase !== 'sweep') return loopState(m, { done: true });
  const outcome = byKey(m) ? await sweepKeys(m, keyLedgerOf(m)) : await sweepLedger(m, ledgerOf(m));
  if (outcome.kind !== 'caught-up') return sweepState(m, outcome);
  await save(m, 'cleanup-approval');
  const w = m.state.sweep;
  report(m, `swept: ${w.lateRows} rows committed late and ${w.newRows} rows written since the verification copied; the old table is quiet`);
  return loopState(m, { done: true });
}
