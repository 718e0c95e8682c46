import type { TaskDeps } from '../core/ports/task-deps.ts';
import { str } from '../core/ports/sql.ts';
import type { TaskEvent } from '../core/tables/chunked-copy.ts';
import { openAlter } from './open-alter.ts';

/** The execution's output: the table's id type now, rows copied and verified, the swap. */
export async function summarize(event: TaskEvent, deps: TaskDeps) {
  const m = await openAlter(event, deps);
  const s = m.state;
  const t = m.input.alter.table;
  const rows = await m.source.query('SELECT COLUMN_TYPE AS type FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ?', [t.database, t.table, m.tables.idColumn]);
  return {
    migrationId: m.input.migrationId,
    machine: 'online-alter',
    phase: m.phase,
    table: `${t.database}.${t.table}`,
    alter: m.input.alter.alter,
    idColumnType: rows[0] ? str(rows[0], 'type') : null,
    rowsCopied: s.rowsCopied,
    rangesVerified: s.rangesVerified,
    rowsVerified: s.rowsVerified,
    rangesRepaired: s.rangesRepaired,
    swappedAt: s.swappedAt,
    swapAttempts: s.swapAttempts,
    autoIncrementAtSwap: s.autoIncrementAtSwap,
    cleanup: m.input.alter.cleanup.mode,
    rowsDeleted: s.rowsDeleted,
    throttledSeconds: Math.round(s.throttledMillis / 1000),
    startedAt: s.startedAt,
    phases: s.phaseStartedAt,
  };
}
