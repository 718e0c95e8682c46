import type { TaskDeps } from '../core/ports/task-deps.ts';
import type { CouchDatabase } from '../core/ports/couch.ts';
import { IncompleteCopy } from '../core/errors.ts';
import { checkComplete } from '../core/docs/complete-check.ts';
import { compareCounts, formatCounts } from '../core/docs/doc-types.ts';
import { compareTargetWithSource } from '../core/docs/compare.ts';
import { docLoopState, openDocMigration, reportDoc, saveDoc, type DocLoopState, type DocTaskEvent } from './open-doc-migration.ts';
import { topOffToHead } from './top-off.ts';

const ROUNDS = 3;

/**
 * The blocking check before the cut-over approval. Every page of the initial copy and every
 * top-off batch was checked right behind its write (the target shows each doc's winning revision
 * as the source did), so what is left is what that cannot see: the top-off is brought to the
 * source's head, then every live doc of the target is compared with the source by key and winning
 * revision (nothing the source deleted or changed is left behind, nothing of another type came
 * across), and the per-type counts with the source's index when it counts cheaply (a view). A doc
 * the site changed after the top-off's seq is the next top-off's, and is not held against the
 * copy. The site keeps writing, so up to three rounds before failing.
 */
export async function assertComplete(event: DocTaskEvent, deps: TaskDeps): Promise<DocLoopState> {
  const m = await openDocMigration(event, deps);
  if (m.phase !== 'assert') return docLoopState(m, { done: true });
  let problems: readonly string[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    await topOffToHead(m);
    const seq = m.state.topOffSeq;
    const info = await m.source.info();
    const [compared, indexCounts] = await Promise.all([compareTargetWithSource(m.source, m.target), m.index.countsCheaply ? m.index.counts() : Promise.resolve(null)]);
    // read after both: every change the comparison may have seen is among them
    const changed = await changedSince(m.source, seq);
    const known = new Set([...changed.keys(), ...m.state.movedOut.map((o) => o.id)]);
    const differing = compared.mismatched.filter((d) => !known.has(d.id)).map((d) => d.id);
    // how far each type's counts may be apart: its docs the target shows stale, and those the source changed into it, since the seq
    const countSlack: Record<string, number> = {};
    for (const d of compared.mismatched) if (known.has(d.id)) countSlack[d.type] = (countSlack[d.type] ?? 0) + 1;
    for (const type of changed.values()) if (type !== null) countSlack[type] = (countSlack[type] ?? 0) + 1;
    const targetCounts = Object.fromEntries(m.wanted.map((t) => [t, compared.matched[t] ?? 0]));
    const extraInTarget = Object.entries(compared.matched).filter(([t]) => !m.wantedSet.has(t)).reduce((n, [, k]) => n + k, 0);
    const sourceCounts = indexCounts ?? targetCounts;
    const verdict = checkComplete({
      checkpointFound: true,
      initialCopyDone: m.state.initialDone,
      wanted: m.wanted,
      sourceCounts,
      targetCounts,
      countSlack,
      checkpointSeq: seq,
      sourceSeq: info!.updateSeq,
      maxSeqLag: m.input.topOff.maxSeqLag,
      differing: differing.slice(0, 10),
      differingCount: differing.length + (compared.mismatchedCount - compared.mismatched.length),
      extraInTarget,
    });
    if (verdict.complete) {
      await saveDoc(m, (s) => {
        s.checkedCounts = { source: sourceCounts, target: targetCounts };
        return 'cutover-approval';
      });
      const how = indexCounts ? '' : ` (the source counted as the target matched it: ${m.index.label} counts only by reading every doc)`;
      reportDoc(m, `initial copy complete${how}:\n${formatCounts(compareCounts(m.wanted, sourceCounts, targetCounts))}`);
      return docLoopState(m, { done: true });
    }
    problems = verdict.problems;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new IncompleteCopy(`the copy is not complete after ${ROUNDS} rounds of top-off: ${problems.join('; ')}`);
}

/** The docs the source changed after `seq`, to its head, each with its doc_type now (null when deleted or untyped). */
async function changedSince(source: CouchDatabase, seq: string): Promise<Map<string, string | null>> {
  const docs = new Map<string, string | null>();
  for (let since = seq; ; ) {
    const feed = await source.changes(since, 1000);
    for (const r of feed.results) {
      const type = r.doc?.doc_type;
      docs.set(r.id, !r.deleted && typeof type === 'string' ? type : null);
    }
    if (feed.results.length < 1000) return docs;
    since = feed.lastSeq;
  }
}
