import type { TaskDeps } from '../core/ports/task-deps.ts';
import { VerificationFailed } from '../core/errors.ts';
import { changedInTarget, copyRevisions, currentLeaves } from '../core/docs/copier.ts';
import { topOffToHead } from './top-off.ts';
import { docLoopState, followDocKnobs, noteEditedInBoth, openDocMigration, pausedReason, reportDoc, saveDoc, timeLeft, type DocLoopState, type DocMigration, type DocTaskEvent } from './open-doc-migration.ts';

/** The conflicts cursor once every page has been handled. */
const ALL_DONE = '\ufff0';

/**
 * Resolves conflicts in the target that came from the source: for every doc with conflicting
 * leaves, the losing leaves the source has are deleted, so the winner (the one CouchDB already
 * picks) is what remains. A losing leaf the source never had is the application's and is kept.
 * Returns true when every page has been handled.
 */
async function resolveTargetConflicts(m: DocMigration): Promise<boolean> {
  while (timeLeft(m)) {
    const cursor = m.state.conflictsCursor;
    const qs: Record<string, unknown> = { include_docs: true, conflicts: true, limit: m.input.cleanup.batchDocs + (cursor === null ? 0 : 1) };
    if (cursor !== null) qs.startkey = cursor;
    const rows = (await m.target.allDocs(qs)).filter((r) => r.id !== cursor);
    const conflicted = Object.fromEntries(rows.filter((r) => r.doc?._conflicts?.length).map((r) => [r.id, [...r.doc!._conflicts!]]));
    const appOnly = await m.source.revsDiff(conflicted);
    const losers = Object.entries(conflicted).flatMap(([id, revs]) => revs.filter((rev) => !(appOnly[id] ?? []).includes(rev)).map((rev) => ({ _id: id, _rev: rev, _deleted: true })));
    const kept = Object.values(appOnly).reduce((n, revs) => n + revs.length, 0);
    await m.target.bulkDocs(losers);
    const last = rows.length ? rows[rows.length - 1]!.id : cursor;
    const end = rows.length < m.input.cleanup.batchDocs;
    await saveDoc(m, (s) => {
      s.conflictsResolved += losers.length;
      s.conflictsKept = (s.conflictsKept ?? 0) + kept;
      s.conflictsCursor = end ? ALL_DONE : last;
    });
    if (losers.length) reportDoc(m, `resolved ${losers.length} conflicting revisions in the target${kept ? `, kept ${kept} the application wrote` : ''}`);
    if (end) return true;
  }
  return false;
}

/**
 * One batch of deletions from the source, the next docs of the wanted types in its index. Every
 * leaf of each doc is first checked against the target (`_revs_diff`): a leaf the target lacks (a
 * late server's write) is copied first, unless the application has changed that doc in the target
 * too — then neither side is touched, and the doc is left in the source and named. A doc is
 * deleted (every leaf, so no conflict revision resurfaces) only when the target has all its
 * leaves. Returns false when the index has no more docs.
 */
async function deleteBatch(m: DocMigration): Promise<boolean> {
  if (m.state.cleanupCursor === ALL_DONE) return false;
  const { refs, next } = await m.index.page(m.state.cleanupCursor ?? null, m.input.cleanup.batchDocs);
  const leaves = await currentLeaves(m.source, refs.map((r) => r.id));
  const missing = Object.entries(await m.target.revsDiff(Object.fromEntries(leaves))).filter(([, revs]) => revs.length > 0);
  const theirs = await changedInTarget(m.source, m.target, missing.map(([id]) => id));
  const left = missing.filter(([id]) => theirs.has(id)).map(([id, revs]) => ({ id, targetRev: theirs.get(id)!, sourceRev: revs[0]! }));
  const toCopy = missing.filter(([id]) => !theirs.has(id)).flatMap(([id, revs]) => revs.map((rev) => ({ id, rev })));
  if (toCopy.length) {
    await copyRevisions(m.source, m.target, toCopy);
    const still = Object.entries(await m.target.revsDiff(Object.fromEntries(toCopy.map((c) => [c.id, leaves.get(c.id)!])))).filter(([, revs]) => revs.length);
    if (still.length) {
      throw new VerificationFailed(`cleanup stopped before deleting ${still[0]![0]}: the target lacks its revision ${still[0]![1][0]} even after copying it. Nothing of that batch was deleted.`);
    }
  }
  const leftIds = new Set(left.map((l) => l.id));
  const deletions = [...leaves].filter(([id]) => !leftIds.has(id)).flatMap(([id, revs]) => revs.map((rev) => ({ _id: id, _rev: rev, _deleted: true })));
  await m.source.bulkDocs(deletions);
  const docs = new Set(deletions.map((d) => d._id)).size;
  await saveDoc(m, (s) => {
    s.docsDeleted += docs;
    s.leavesDeleted += deletions.length;
    s.docsLeftInSource = (s.docsLeftInSource ?? 0) + left.length;
    noteEditedInBoth(s, left);
    s.cleanupCursor = next ?? ALL_DONE;
  });
  reportDoc(m, `deleted ${docs} docs from the source${toCopy.length ? ` (${toCopy.length} late revisions copied first)` : ''}${left.length ? `; left ${left.length} edited in both databases` : ''}`);
  return next !== null;
}

/** After the cleanup approval and with the top-off stopped: resolve conflicts, then empty the source of the moved types. */
export async function cleanup(event: DocTaskEvent, deps: TaskDeps): Promise<DocLoopState> {
  const m = await openDocMigration(event, deps);
  if (m.phase === 'done') return docLoopState(m, { done: true, stopped: true });
  // What the old database received between the top-off's last poll and its stop (a late server's
  // write, a deletion above all) is carried over once, before anything is deleted or resolved.
  // (a checkpoint from before this pass existed, whose cleanup may have begun deleting: never)
  const begun = m.state.docsDeleted > 0 || m.state.conflictsCursor !== null || (m.state.cleanupCursor ?? null) !== null;
  if (!m.state.lastTopOffDone && !begun) {
    if (!(await topOffToHead(m, true))) return docLoopState(m, { done: false, stopped: true });
    await saveDoc(m, (s) => {
      s.lastTopOffDone = true;
    });
  }
  if (m.input.cleanup.mode === 'none') {
    await saveDoc(m, () => 'done');
    return docLoopState(m, { done: true, stopped: true });
  }
  await followDocKnobs(m);
  if (m.state.conflictsCursor !== ALL_DONE && !(await resolveTargetConflicts(m))) return docLoopState(m, { done: false, stopped: true });
  while (timeLeft(m)) {
    const paused = await pausedReason(m);
    if (paused) {
      reportDoc(m, 'throttled', paused, 5);
      return docLoopState(m, { done: false, stopped: true, waitSeconds: 5, throttle: paused });
    }
    if (!(await deleteBatch(m))) {
      await saveDoc(m, () => 'done');
      const left = m.state.docsLeftInSource ?? 0;
      const named = (m.state.editedInBoth ?? []).slice(0, 5).map((d) => d.id).join(', ');
      reportDoc(
        m,
        `cleanup done: ${m.state.docsDeleted} docs deleted from the source` +
          (left ? `; left in the source: ${left} docs edited in both databases after the cut-over (${named}${left > 5 ? ', …' : ''}): the target keeps the application's edit; decide, then delete them from the source` : ''),
      );
      return docLoopState(m, { done: true, stopped: true });
    }
    if (m.input.cleanup.pauseMillis > 0) await new Promise((r) => setTimeout(r, m.input.cleanup.pauseMillis));
  }
  return docLoopState(m, { done: false, stopped: true });
}
