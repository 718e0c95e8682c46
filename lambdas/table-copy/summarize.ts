import type { TaskDeps } from '../core/ports/task-deps.ts';
import { byKey, ledgerOf, openMigration, type TaskEvent } from './open-migration.ts';

/** The execution's final output: what moved, what was checked, what was removed. */
export async function summarize(event: TaskEvent, deps: TaskDeps) {
  const m = await openMigration(event, deps);
  const s = m.state;
  // A key ledger's spans count the rows not deleted yet: once emptied, the rows delivered are those copied and swept.
  const ledger = byKey(m) ? { rows: (BigInt(s.rowsVerified) + BigInt(s.sweep.lateRows) + BigInt(s.sweep.newRows)).toString(), holes: null } : await ledgerOf(m).totals();
  return {
    migrationId: m.input.migrationId,
    machine: 'table-copy',
    phase: m.phase,
    outcome: m.phase === 'reverted' ? 'reverted' : 'done',
    ...(s.revert ? { reverted: { askedBy: s.revert.askedBy, at: s.revert.at, spansCompared: s.revert.spansCompared ?? 0, rowsCompared: s.revert.rowsCompared ?? '0', rowsCarried: s.revert.rowsCarried ?? 0, compared: s.revert.fromLog ? 'the spans the revert window logged' : 'every span', ...(s.revert.fromLog ? { logEntries: s.revert.logEntries ?? 0 } : {}), flagsSetBack: s.flagsBefore ?? {} } } : {}),
    revertWindow: s.window ? ('refused' in s.window ? `refused: ${s.window.refused}` : s.window.closedAt ? `closed at ${s.window.closedAt}` : `open since ${s.window.openedAt}`) : 'none',
    source: `${m.input.source.database}.${m.input.source.table}`,
    target: `${m.input.target.database}.${m.input.target.table}`,
    rowsCopied: s.rowsCopied,
    copiedUpTo: s.copiedUpTo,
    ...(s.copyKey?.columns ? { copyKey: s.copyKey.columns } : {}),
    idOffset: s.idOffset,
    sourceInsertsPerHour: s.insertsPerHour,
    targetAutoIncrement: s.autoIncrement,
    rangesVerified: s.rangesVerified,
    rowsVerified: s.rowsVerified,
    rangesRepaired: s.rangesRepaired,
    lateRowsCopied: s.sweep.lateRows,
    rowsCopiedAfterCutover: s.sweep.newRows,
    rowsDelivered: ledger.rows,
    holeIntervals: ledger.holes,
    cleanup: m.input.cleanup.mode,
    rowsDeleted: s.rowsDeleted,
    throttledSeconds: Math.round(s.throttledMillis / 1000),
    flags: await deps.flags.list(m.input.migrationId),
    startedAt: s.startedAt,
    phases: s.phaseStartedAt,
  };
}
