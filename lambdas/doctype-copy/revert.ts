import type { ChangeRow } from '../core/ports/couch.ts';
import type { TaskDeps } from '../core/ports/task-deps.ts';
import { InvalidInput } from '../core/errors.ts';
import { setFlagsBack } from '../core/ports/flags.ts';
import { checkWritten } from '../core/docs/compare.ts';
import { copyRevisions } from '../core/docs/copier.ts';
import { seqNumber } from '../core/docs/changes.ts';
import { LAG_REPORT_EVERY_MILLIS, lagReportText } from '../core/ports/status.ts';
import type { DoctypeCopyInput } from '../core/doctype-copy-input.ts';
import { docLoopState, openDocMigration, pausedReason, reportDoc, saveDoc, timeLeft, type DocLoopState, type DocMigration, type DocTaskEvent } from './open-doc-migration.ts';

/**
 * The revert of a doctype-copy, asked instead of the cleanup (`ferry revert`): what the
 * application wrote in the target since the cut-over goes back to the source, and the cut-over
 * flags are set back to what they were before it.
 *
 * 1. Carry back: the target's `_changes` after its seq at the cut-over, a page at a time; each
 *    revision of a migrated doc (a doc of the wanted types, or one the source holds: a tombstone
 *    carries no doc_type) that the source lacks is copied with its history (`new_edits: false`),
 *    so the source's revision trees grow by exactly the application's edits, creations and
 *    deletions, with no new conflict.
 * 2. Once at the head: the flags go back (a flag unset before the cut-over is removed), and the
 *    application writes the source again.
 * 3. Late writes to the target (a server that had not yet read the flags) are carried back until
 *    the target has had nothing of ours for `topOff.quietSeconds`.
 * 4. Verify: the target's changes since the cut-over are read again from the start; every
 *    revision must be in the source. One missing is copied and the quiet period starts again.
 * Then the checkpoint's phase is `reverted`; a new run of the same input starts the copy again.
 */


/** The latest change of each doc the revert carries back: docs of the wanted types, and any doc the source holds. */
function ours(rows: readonly ChangeRow[], wanted: ReadonlySet<string>, inSource: ReadonlySet<string>): { id: string; revs: string[]; deleted: boolean }[] {
  const latest = new Map<string, ChangeRow>();
  for (const row of rows) {
    if (row.id.startsWith('_design/') || row.id.startsWith('_local/')) continue;
    latest.delete(row.id);
    latest.set(row.id, row);
  }
  return [...latest.values()].flatMap((row) => {
    const docType = typeof row.doc?.doc_type === 'string' ? row.doc.doc_type : null;
    const mine = inSource.has(row.id) || (!row.deleted && docType !== null && wanted.has(docType));
    return mine ? [{ id: row.id, revs: row.changes.map((c) => c.rev), deleted: row.deleted === true }] : [];
  });
}

/**
 * Reads the target's feed from `since` to its head (or the budget's end), copying into the source
 * every revision of ours it lacks. Returns where it stopped, whether that is the head, and how
 * many revisions were missing.
 */
async function carryBack(m: DocMigration, since: string): Promise<{ seq: string; atHead: boolean; missing: number; docs: number; tombstones: number }> {
  let seq = since;
  let missing = 0;
  let docs = 0;
  let tombstones = 0;
  for (;;) {
    const feed = await m.target.changes(seq, m.input.page.docs);
    if (feed.results.length === 0) return { seq, atHead: true, missing, docs, tombstones };
    const ids = [...new Set(feed.results.map((r) => r.id))];
    const known = await m.source.allDocs({}, ids);
    const inSource = new Set(known.filter((r) => !r.error && r.value).map((r) => r.id));
    const changed = ours(feed.results, m.wantedSet, inSource);
    const lacking = changed.length ? await m.source.revsDiff(Object.fromEntries(changed.map((c) => [c.id, c.revs]))) : {};
    const items = Object.entries(lacking).flatMap(([id, revs]) => revs.map((rev) => ({ id, rev })));
    if (items.length) {
      const written = await copyRevisions(m.target, m.source, items);
      await checkWritten(m.target, m.source, written);
      missing += items.length;
      docs += written.length;
      tombstones += changed.filter((c) => c.deleted && lacking[c.id]?.length).length;
    }
    seq = feed.lastSeq;
    if (feed.results.length < m.input.page.docs) return { seq, atHead: true, missing, docs, tombstones };
    if (!timeLeft(m)) return { seq, atHead: false, missing, docs, tombstones };
  }
}

export async function revert(event: DocTaskEvent & { cause?: string | null }, deps: TaskDeps): Promise<DocLoopState> {
  const m = await openDocMigration(event, deps);
  if (m.phase === 'reverted') return docLoopState(m, { done: true });
  const s = m.state;
  if (m.phase !== 'revert') {
    if (m.phase !== 'cleanup-approval') throw new InvalidInput('migrationId', `${m.input.migrationId} is in phase ${m.phase}: only a migration waiting for its cleanup approval can be reverted`);
    if (!s.flagsBefore) {
      throw new InvalidInput('migrationId', `the flags' values before the cut-over of ${m.input.migrationId} were not recorded (it was cut over by an earlier ferry): set them back by hand (ferry flags), then carry the target's changes back by hand`);
    }
    const sourceSeq = String((await m.source.info())?.updateSeq ?? m.state.topOffSeq);
    await saveDoc(m, (st) => {
      st.revert ??= { seq: String(st.targetSeqAtCutover ?? '0'), flagsBack: false, verifySeq: null, quietSince: null, docsCarried: 0, tombstonesCarried: 0, askedBy: event.cause ?? null, sourceSeq };
      return 'revert';
    });
    reportDoc(m, `reverting: carrying what the application wrote in ${m.input.target.database} since the cut-over back to ${m.input.source.database}`);
  }
  const r = m.state.revert!;
  const paused = await pausedReason(m);
  if (paused) return docLoopState(m, { done: false, waitSeconds: m.input.topOff.pollSeconds, throttle: paused });
  const verifying = r.verifySeq !== null;
  const pass = await carryBack(m, verifying ? r.verifySeq! : r.seq);
  await saveDoc(m, (st) => {
    const w = st.revert!;
    if (verifying) w.verifySeq = pass.seq;
    else w.seq = pass.seq;
    w.docsCarried += pass.docs;
    w.tombstonesCarried += pass.tombstones;
    if (pass.missing > 0) {
      w.quietSince = new Date(deps.now()).toISOString();
      // A revision found missing while verifying: the target still takes writes; wait and look again.
      if (verifying) w.verifySeq = null;
    }
  });
  if (pass.docs) reportDoc(m, `reverting: carried ${pass.docs} docs back to ${m.input.source.database}${verifying ? ' (found while verifying)' : ''}`);
  if (!pass.atHead) return docLoopState(m, { done: false });
  const w = m.state.revert!;
  if (!w.flagsBack) {
    const said = await setFlagsBack(deps.flags, m.input.migrationId, s.flagsBefore!);
    await saveDoc(m, (st) => {
      const x = st.revert!;
      x.flagsBack = true;
      x.quietSince = new Date(deps.now()).toISOString();
    });
    reportDoc(m, `reverting: caught up; flags set back: ${said}. Late writes to ${m.input.target.database} are carried back for ${m.input.topOff.quietSeconds} s of quiet`);
    return docLoopState(m, { done: false, waitSeconds: m.input.topOff.pollSeconds });
  }
  const quietFor = (deps.now() - Date.parse(w.quietSince ?? new Date(deps.now()).toISOString())) / 1000;
  if (quietFor < m.input.topOff.quietSeconds) {
    return docLoopState(m, { done: false, waitSeconds: Math.max(1, Math.min(m.input.topOff.pollSeconds, Math.ceil(m.input.topOff.quietSeconds - quietFor))) });
  }
  if (!verifying) {
    await saveDoc(m, (st) => {
      st.revert!.verifySeq = String(st.targetSeqAtCutover ?? '0');
    });
    reportDoc(m, `reverting: quiet for ${Math.floor(quietFor)} s; verifying that every revision the application wrote since the cut-over is in ${m.input.source.database}`);
    return docLoopState(m, { done: false });
  }
  if (pass.missing > 0) return docLoopState(m, { done: false, waitSeconds: m.input.topOff.pollSeconds });
  await saveDoc(m, () => 'reverted');
  reportDoc(m, `reverted: ${w.docsCarried} docs carried back (${w.tombstonesCarried} deletions); ${m.input.source.database} is the home again`);
  return docLoopState(m, { done: true });
}

/**
 * How far the old database trails the new one while a revert is possible, in words: every change
 * the new database took since the cut-over (from its seqs: any doc's), which a revert reads; null
 * when a seq does not read as a number.
 */
export function oldDatabaseLag(input: Pick<DoctypeCopyInput, 'source' | 'target'>, seqAtCutover: string, updateSeq: string | undefined): string | null {
  const [from, now] = [seqNumber(seqAtCutover), seqNumber(updateSeq)];
  if (from === null || now === null) return null;
  return `old database: ${now - from} changes in ${input.target.database} since the cut-over (seq ${from} → ${now}), not in ${input.source.database}; ferry revert would carry back those of the migrated types`;
}

/**
 * Beside a pending cleanup approval, on AWS, where the page and `ferry status --aws` read no
 * database: the old database's lag, reported by the top-off that runs until the cleanup begins,
 * once a minute at most. A report that cannot be written is said, and the top-off goes on.
 */
export async function reportLag(m: DocMigration): Promise<void> {
  const status = m.deps.status;
  if (!status || m.phase !== 'cleanup-approval' || m.state.targetSeqAtCutover === undefined) return;
  if (m.deps.now() - Date.parse(m.state.lagReportedAt ?? '1970-01-01T00:00:00Z') < LAG_REPORT_EVERY_MILLIS) return;
  const note = oldDatabaseLag(m.input, m.state.targetSeqAtCutover, (await m.target.info())?.updateSeq);
  if (note === null) return;
  const at = new Date(m.deps.now()).toISOString();
  try {
    await status.put(m.input.migrationId, 'lag', lagReportText(at, note));
  } catch (err) {
    reportDoc(m, `the old database's lag could not be reported for the approval page: ${(err as Error).name}: ${(err as Error).message}`);
    return;
  }
  await saveDoc(m, (s) => {
    s.lagReportedAt = at;
  });
}
