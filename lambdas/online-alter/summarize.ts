import type { TaskDeps } from '../core/ports/task-deps.ts';
import { keyOf } from '../core/tables/copier.ts';
import { inspectTable } from '../core/tables/inspector.ts';
import type { TaskEvent } from '../core/tables/chunked-copy.ts';
import { openAlter } from './open-alter.ts';

/** The execution's output: the table's id type now, rows copied and verified, the swap. */
export async function summarize(event: TaskEvent, deps: TaskDeps) {
  const m = await openAlter(event, deps);
  const s = m.state;
  const t = m.input.alter.table;
  const info = await inspectTable(m.source, t);
  return {
    migrationId: m.input.migrationId,
    machine: 'online-alter',
    phase: m.phase,
    outcome: m.phase === 'reverted' ? 'reverted' : 'done',
    table: `${t.database}.${t.table}`,
    alter: m.input.alter.alter,
    /** The key it copied by (see CopyKey), its columns. */
    copyKey: keyOf(m.tables).columns.map((c) => c.name),
    idColumnType: info?.columns.find((c) => c.name === m.tables.idColumn)?.columnType ?? null,
    rowsCopied: s.rowsCopied,
    rangesVerified: s.rangesVerified,
    rowsVerified: s.rowsVerified,
    rangesRepaired: s.rangesRepaired,
    rowsWrittenAgain: s.rowsWrittenAgain ?? 0,
    swappedAt: s.swappedAt,
    swapAttempts: s.swapAttempts,
    autoIncrementAtSwap: s.autoIncrementAtSwap,
    cleanup: m.input.alter.cleanup.mode,
    rowsDeleted: s.rowsDeleted,
    ...(s.revert ? { reverted: { askedBy: s.revert.askedBy, fromWindow: s.revert.fromLog === true, rangesCompared: s.revert.rangesVerified, rowsCompared: s.revert.rowsVerified, rangesRepaired: s.revert.rangesRepaired, rowsWrittenAgain: s.revert.rowsWrittenBack, swappedBackAt: s.revert.swappedBackAt } } : {}),
    throttledSeconds: Math.round(s.throttledMillis / 1000),
    startedAt: s.startedAt,
    phases: s.phaseStartedAt,
  };
}
