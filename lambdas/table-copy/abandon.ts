import type { TaskDeps } from '../core/ports/task-deps.ts';
import { CheckpointStore } from '../core/checkpoints.ts';
import { closeCopyWindow, copyWindowLeft, windowLock } from '../core/tables/copy-window.ts';
import { MACHINE, parseTableCopyInput, type TableCopyState } from './open-migration.ts';

export interface AbandonEvent {
  readonly migration: unknown;
  /** `$$.Execution.Id` of the abandon execution. */
  readonly execution?: string;
}

/**
 * `ferry abandon` of a table-copy (which stops the running execution first): takes what ferry keeps
 * on the application's new table off it, the revert window's triggers and then their log (see
 * copy-window.ts), and notes in the checkpoint that the window is closed. Nothing else changes: both
 * tables, the flags, the checkpoint and the ledger stay as they are, and a run of the same input
 * later goes on from the checkpoint, without a window (its revert compares every span).
 */
export async function abandonCopy(event: AbandonEvent, deps: TaskDeps): Promise<{ abandoned: boolean; note: string }> {
  const input = parseTableCopyInput(event.migration);
  const t = input.target;
  const say = (note: string) => {
    deps.report({ migrationId: input.migrationId, phase: 'abandoned', done: '0', total: null, note, throttle: null });
    return { abandoned: true, note };
  };
  const conn = await deps.sql.connect(t.connection);
  const where = `${t.database}.${t.table}`;
  const keeps = 'both tables, the flags, the checkpoint and the ledger stay as they are: a run of the same input goes on from the checkpoint, and its revert compares every span';
  if (!(await copyWindowLeft(conn, input.migrationId, t))) return say(`nothing of ${input.migrationId} is on ${where} (no revert window); ${keeps}`);
  await closeCopyWindow(conn, input.migrationId, t, windowLock(deps.stopping));
  const store = new CheckpointStore<TableCopyState>(conn, t.database, MACHINE);
  const window = await store.stateField<TableCopyState['window']>(input.migrationId, 'window');
  const at = await store.phaseAndOwner(input.migrationId);
  if (window && 'openedAt' in window && !window.closedAt && at) {
    await store.setStateField(input.migrationId, 'window', { ...window, closedAt: new Date(deps.now()).toISOString(), closedBy: 'ferry abandon' }, at);
  }
  return say(`the revert window's triggers and log were dropped from ${where}: nothing of ferry's is on it now; ${keeps}`);
}

/** What a stopped table-copy leaves on the new table until it is resumed or abandoned (see MachineSpec.leftOnStop): the revert window, or nothing. */
export async function windowLeft(raw: unknown, deps: TaskDeps): Promise<string | null> {
  const input = parseTableCopyInput(raw);
  const t = input.target;
  const conn = await deps.sql.connect(t.connection);
  if (!(await copyWindowLeft(conn, input.migrationId, t))) return null;
  return `the revert window stays on ${t.database}.${t.table}: ferry's triggers log the id of each row the application writes there`;
}
