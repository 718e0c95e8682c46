import type { TaskDeps } from '../core/ports/task-deps.ts';
import { compareCounts } from '../core/docs/doc-types.ts';
import { ensureFerryView, ViewIndex, FERRY_DDOC, FERRY_VIEW } from '../core/docs/doc-type-index.ts';
import { openDocMigration, type DocTaskEvent } from './open-doc-migration.ts';

/** The execution's output: what moved, per-type counts on both sides now, what was deleted. */
export async function summarize(event: DocTaskEvent, deps: TaskDeps) {
  const m = await openDocMigration(event, deps);
  const s = m.state;
  // The target is ferry's to write to: its own view there counts what it holds.
  await ensureFerryView(m.target);
  const [source, target] = await Promise.all([m.index.counts(), new ViewIndex(m.target, FERRY_DDOC, FERRY_VIEW, m.wanted).counts()]);
  return {
    migrationId: m.input.migrationId,
    machine: 'doctype-copy',
    phase: m.phase,
    source: m.input.source.database,
    target: m.input.target.database,
    counts: compareCounts(m.wanted, source, target),
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
