import type { TaskDeps } from '../core/ports/task-deps.ts';
import { VerificationFailed } from '../core/errors.ts';
import { copyRevisions, leafRevs } from '../core/docs/copier.ts';
import { idsOfTypes } from '../core/docs/stats.ts';
import { docLoopState, openDocMigration, pausedReason, reportDoc, saveDoc, timeLeft, type DocLoopState, type DocMigration, type DocTaskEvent } from './open-doc-migration.ts';

/**
 * Resolves conflicts in the target: for every moved doc with conflicting leaves, the losing
 * leaves are deleted, so the winner (the same one CouchDB already picks) is all that remains.
 * Returns true when every page has been handled.
 */
async function resolveTargetConflicts(m: DocMigration): Promise<boolean> {
  while (timeLeft(m)) {
    const qs: Record<string, unknown> = { include_docs: true, conflicts: true, limit: m.input.cleanup.batchDocs };
    if (m.state.conflictsCursor !== null) Object.assign(qs, { startkey: m.state.conflictsCursor, skip: 1 });
    const rows = await m.target.allDocs(qs);
    const losers = rows.flatMap((r) => (r.doc?._conflicts ?? []).map((rev) => ({ _id: r.id, _rev: rev, _deleted: true })));
    await m.target.bulkDocs(losers);
    const last = rows.length ? rows[rows.length - 1]!.id : m.state.conflictsCursor;
    await saveDoc(m, (s) => {
      s.conflictsResolved += losers.length;
      s.conflictsCursor = rows.length < m.input.cleanup.batchDocs ? '\ufff0' : last;
    });
    if (losers.length) reportDoc(m, `resolved ${losers.length} conflicting revisions in the target`);
    if (rows.length < m.input.cleanup.batchDocs) return true;
  }
  return false;
}

/**
 * One batch of deletions from the source. Every leaf of every doc is first checked against the
 * target (`_revs_diff`); a leaf the target lacks is copied, and the doc is deleted only when the
 * target has all of them. Then every leaf is deleted, so no conflict revision resurfaces as the
 * winner. Returns false when no doc of the wanted types is left.
 */
async function deleteBatch(m: DocMigration): Promise<boolean> {
  const ids = await idsOfTypes(m.source, m.wanted, m.input.cleanup.batchDocs);
  if (ids.length === 0) return false;
  const rows = (await m.source.allDocs({ include_docs: true, conflicts: true }, ids)).filter((r) => r.doc && !r.value.deleted);
  const leaves = Object.fromEntries(rows.map((r) => [r.id, leafRevs(r)]));
  const missing = await m.target.revsDiff(leaves);
  const toCopy = Object.entries(missing).flatMap(([id, revs]) => revs.map((rev) => ({ id, rev })));
  if (toCopy.length) {
    await copyRevisions(m.source, m.target, toCopy);
    const still = Object.entries(await m.target.revsDiff(leaves)).filter(([, revs]) => revs.length);
    if (still.length) {
      throw new VerificationFailed(`cleanup stopped before deleting ${still[0]![0]}: the target lacks its revision ${still[0]![1][0]} even after copying it. Nothing of that batch was deleted.`);
    }
  }
  const deletions = rows.flatMap((r) => leafRevs(r).map((rev) => ({ _id: r.id, _rev: rev, _deleted: true })));
  await m.source.bulkDocs(deletions);
  await saveDoc(m, (s) => {
    s.docsDeleted += rows.length;
    s.leavesDeleted += deletions.length;
  });
  reportDoc(m, `deleted ${rows.length} docs from the source${toCopy.length ? ` (${toCopy.length} late revisions copied first)` : ''}`);
  return true;
}

/** After the cleanup approval and with the top-off stopped: resolve conflicts, then empty the source of the moved types. */
export async function cleanup(event: DocTaskEvent, deps: TaskDeps): Promise<DocLoopState> {
  const m = await openDocMigration(event, deps);
  if (m.phase === 'done') return docLoopState(m, { done: true, stopped: true });
  if (m.input.cleanup.mode === 'none') {
    await saveDoc(m, () => 'done');
    return docLoopState(m, { done: true, stopped: true });
  }
  if (m.state.conflictsCursor !== '\ufff0' && !(await resolveTargetConflicts(m))) return docLoopState(m, { done: false, stopped: true });
  while (timeLeft(m)) {
    const paused = await pausedReason(m);
    if (paused) {
      reportDoc(m, 'throttled', paused, 5);
      return docLoopState(m, { done: false, stopped: true, waitSeconds: 5, throttle: paused });
    }
    if (!(await deleteBatch(m))) {
      await saveDoc(m, () => 'done');
      reportDoc(m, `cleanup done: ${m.state.docsDeleted} docs deleted from the source`);
      return docLoopState(m, { done: true, stopped: true });
    }
    if (m.input.cleanup.pauseMillis > 0) await new Promise((r) => setTimeout(r, m.input.cleanup.pauseMillis));
  }
  return docLoopState(m, { done: false, stopped: true });
}
