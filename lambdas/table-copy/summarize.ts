import type { TaskDeps } from '../core/ports/task-deps.ts';
import { openMigration, type TaskEvent } from './open-migration.ts';

/** The execution's final output: what moved, what was checked, what was removed. */
export async function summarize(event: TaskEvent, deps: TaskDeps) {
  const m = await openMigration(event, deps);
  const s = m.state;
  return {
    migrationId: m.input.migrationId,
    machine: 'table-copy',
    phase: m.phase,
    source: `${m.input.source.database}.${m.input.source.table}`,
    target: `${m.input.target.database}.${m.input.target.table}`,
    rowsCopied: s.rowsCopied,
    copiedUpTo: s.copiedUpTo,
    targetAutoIncrement: s.autoIncrement,
    rangesVerified: s.rangesVerified,
    rowsVerified: s.rowsVerified,
    rangesRepaired: s.rangesRepaired,
    cleanup: m.input.cleanup.mode,
    rowsDeleted: s.rowsDeleted,
    lateRowsCopiedAtCleanup: s.lateRowsCopied ?? '0',
    throttledSeconds: Math.round(s.throttledMillis / 1000),
    flags: await deps.flags.list(m.input.migrationId),
    startedAt: s.startedAt,
    phases: s.phaseStartedAt,
  };
}
