import type { TaskDeps } from '../core/ports/task-deps.ts';
import { classifyChanges } from '../core/docs/changes.ts';
import { checkWritten } from '../core/docs/compare.ts';
import { changedInTarget, copyRevisions } from '../core/docs/copier.ts';
import { TOP_OFF_STOPPED, docLoopState, followDocKnobs, noteEditedInBoth, openDocMigration, pausedReason, reportDoc, saveDoc, timeLeft, type DocLoopState, type DocMigration, type DocTaskEvent } from './open-doc-migration.ts';
import { reportLag } from './revert.ts';

const MOVED_OUT_KEPT = 100;

/**
 * Reads the plain `_changes` feed after the checkpoint, a page at a time, until it reaches the
 * head or the budget is spent. Docs of the wanted types are copied with history, tombstones of
 * docs already moved as tombstones; docs whose type left the set are reported. The checkpoint
 * seq moves only after the target write, checked behind it as the initial copy's pages are.
 * Returns true when the feed was read to its head. `last`: the cleanup's one pass before its
 * first deletion, once the top-off has stopped.
 */
export async function topOffToHead(m: DocMigration, last = false): Promise<boolean> {
  for (;;) {
    if (!last && TOP_OFF_STOPPED.includes(m.phase)) return true;
    await followDocKnobs(m);
    const feed = await m.source.changes(m.state.topOffSeq, m.input.page.docs);
    if (feed.results.length === 0) return true;
    const ids = [...new Set(feed.results.map((r) => r.id))];
    const known = await m.target.allDocs({}, ids);
    const inTarget = new Set(known.filter((r) => !r.error && r.value).map((r) => r.id));
    const actions = classifyChanges(feed.results, m.wantedSet, inTarget);
    // A doc the application changed in the target (after the cut-over) is its own now: a late source edit is not carried over.
    const theirs = await changedInTarget(m.source, m.target, actions.flatMap((a) => (a.kind === 'copy' && inTarget.has(a.id) ? [a.id] : [])));
    const copied = actions.filter((a): a is Extract<typeof a, { kind: 'copy' }> => a.kind === 'copy' && !theirs.has(a.id));
    const kept = actions.flatMap((a) => (a.kind === 'copy' && theirs.has(a.id) ? [{ id: a.id, targetRev: theirs.get(a.id)!, sourceRev: a.revs[0]! }] : []));
    const written = await copyRevisions(m.source, m.target, copied.flatMap((a) => a.revs.map((rev) => ({ id: a.id, rev }))));
    await checkWritten(m.source, m.target, written);
    const movedOut = actions.flatMap((a) => (a.kind === 'moved-out' ? [{ id: a.id, docType: a.docType }] : []));
    await saveDoc(m, (s) => {
      s.topOffSeq = feed.lastSeq;
      s.changesRead += feed.results.length;
      s.docsToppedOff += copied.length;
      s.tombstonesCopied += copied.filter((a) => a.deleted).length;
      for (const o of movedOut) if (s.movedOut.length < MOVED_OUT_KEPT && !s.movedOut.some((x) => x.id === o.id)) s.movedOut.push(o);
      if (copied.length > 0) s.quietSince = new Date(m.deps.now()).toISOString();
      noteEditedInBoth(s, kept);
    });
    for (const k of kept) reportDoc(m, `doc ${k.id} was changed in ${m.input.target.database} by the application and in ${m.input.source.database} since: the target's stays, the source's is left for a person to decide`);
    for (const o of movedOut) reportDoc(m, `doc ${o.id} is in the target but its doc_type is now ${o.docType}, which is not migrated`);
    if (copied.length) reportDoc(m, `topped off ${copied.length} docs up to seq ${String(feed.lastSeq).slice(0, 24)}`);
    if (feed.results.length < m.input.page.docs) return true;
    if (!timeLeft(m)) return false;
  }
}

/**
 * The continuous top-off. Before the cut-over it ends once the feed has had nothing of ours for
 * `topOff.quietSeconds`; during the cut-over approvals it keeps going until the cleanup begins,
 * and then it stops for good.
 */
export async function topOff(event: DocTaskEvent, deps: TaskDeps): Promise<DocLoopState> {
  const m = await openDocMigration(event, deps);
  if (TOP_OFF_STOPPED.includes(m.phase)) return docLoopState(m, { done: true, stopped: true });
  const paused = await pausedReason(m);
  if (paused) {
    reportDoc(m, 'throttled', paused, m.input.topOff.pollSeconds);
    return docLoopState(m, { done: false, waitSeconds: m.input.topOff.pollSeconds, throttle: paused });
  }
  const atHead = await topOffToHead(m);
  if (TOP_OFF_STOPPED.includes(m.phase)) return docLoopState(m, { done: true, stopped: true });
  if (!atHead) return docLoopState(m, { done: false });
  await reportLag(m);
  const { quietSeconds, pollSeconds } = m.input.topOff;
  const quietFor = (deps.now() - Date.parse(m.state.quietSince ?? new Date(deps.now()).toISOString())) / 1000;
  if (m.phase === 'top-off' && quietFor >= quietSeconds) {
    await saveDoc(m, () => 'assert');
    reportDoc(m, `caught up at seq ${String(m.state.topOffSeq).slice(0, 24)}: nothing of ours for ${Math.floor(quietFor)} s`);
    return docLoopState(m, { done: true });
  }
  const wait = m.phase === 'top-off' ? Math.min(pollSeconds, Math.max(1, Math.ceil(quietSeconds - quietFor))) : pollSeconds;
  reportDoc(m, m.phase === 'top-off' ? `caught up; waiting for ${quietSeconds} s with nothing of ours (${Math.floor(quietFor)} s so far)` : 'caught up; topping off until the cleanup begins');
  return docLoopState(m, { done: false, waitSeconds: wait });
}
