import type { TaskDeps } from '../core/ports/task-deps.ts';
import { compareCounts } from '../core/docs/doc-types.ts';
import { openDocMigration, type DocTaskEvent } from './open-doc-migration.ts';

/**
 * The execution's output: what moved, what was deleted, the source's per-type counts now (through
 * its index) and both sides' when the completeness check passed. The target is the application's
 * by now: ferry writes nothing there to count it (no view to build over a live database).
 */
export async function summarize(event: DocTaskEvent, deps: TaskDeps) {
  const m = await openDocMigration(event, deps);
  const s = m.state;
  const checked = s.checkedCounts ?? { source: {}, target: {} };
  return {
    migrationId: m.input.migrationId,
    machine: 'doctype-copy',
    outcome: m.phase === 'reverted' ? 'reverted' : 'done',
    phase: m.phase,
    ...(s.revert ? { reverted: { docsCarriedBack: s.revert.docsCarried, deletionsCarriedBack: s.revert.tombstonesCarried, askedBy: s.revert.askedBy, flagsSetBack: s.flagsBefore ?? {} } } : {}),
    source: m.input.source.database,
    target: m.input.target.database,
    countsAtCheck: compareCounts(m.wanted, checked.source, checked.target),
    sourceLeft: await m.index.counts(),
    docsCopied: s.docsCopied,
    revisionsWritten: s.revisionsWritten,
    docsToppedOff: s.docsToppedOff,
    tombstonesCopied: s.tombstonesCopied,
    movedOut: s.movedOut,
    conflictsResolved: s.conflictsResolved,
    conflictsKept: s.conflictsKept ?? 0,
    docsDeleted: s.docsDeleted,
    editedInBoth: s.editedInBoth ?? [],
    editedInBothCount: s.editedInBothCount ?? 0,
    docsLeftInSource: s.docsLeftInSource ?? 0,
    flags: await deps.flags.list(m.input.migrationId),
    startedAt: s.startedAt,
    phases: s.phaseStartedAt,
  };
}
