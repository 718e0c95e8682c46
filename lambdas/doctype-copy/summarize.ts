import type { TaskDeps } from '../core/ports/task-deps.ts';
import { compareCounts } from '../core/docs/doc-types.ts';
import { countByType } from '../core/docs/stats.ts';
import { openDocMigration, type DocTaskEvent } from './open-doc-migration.ts';

/** The execution's output: what moved, per-type counts on both sides now, what was deleted. */
export async function summarize(event: DocTaskEvent, deps: TaskDeps) {
  const m = await openDocMigration(event, deps);
  const s = m.state;
  const [source, target] = await Promise.all([countByType(m.source, m.wanted), countByType(m.target, m.wanted)]);
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
    docsDeleted: s.docsDeleted,
    flags: await deps.flags.list(m.input.migrationId),
    startedAt: s.startedAt,
    phases: s.phaseStartedAt,
  };
}
