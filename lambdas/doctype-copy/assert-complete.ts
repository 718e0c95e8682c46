import type { TaskDeps } from '../core/ports/task-deps.ts';
import { IncompleteCopy } from '../core/errors.ts';
import { checkComplete } from '../core/docs/complete-check.ts';
import { compareCounts, formatCounts } from '../core/docs/doc-types.ts';
import { compareDocs } from '../core/docs/compare.ts';
import { docLoopState, openDocMigration, reportDoc, saveDoc, type DocLoopState, type DocTaskEvent } from './open-doc-migration.ts';
import { topOffToHead } from './top-off.ts';

const ROUNDS = 3;

/**
 * The blocking check before the cut-over approval: checkpoint present, initial copy finished,
 * every doc of the wanted types in the target with the source's winning revision (by key, no view
 * built), nothing live in the target the source lacks, and the top-off seq close to the source's. The site keeps
 * writing, so it tops off to the head and compares again, up to three rounds, before failing.
 */
export async function assertComplete(event: DocTaskEvent, deps: TaskDeps): Promise<DocLoopState> {
  const m = await openDocMigration(event, deps);
  if (m.phase !== 'assert') return docLoopState(m, { done: true });
  let problems: readonly string[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    await topOffToHead(m);
    const info = await m.source.info();
    const compared = await compareDocs(m.index, m.source, m.target, m.wanted, m.state.movedOut.length);
    const { sourceCounts, targetCounts } = compared;
    const verdict = checkComplete({
      checkpointFound: true,
      initialCopyDone: m.state.initialDone,
      wanted: m.wanted,
      sourceCounts,
      targetCounts,
      checkpointSeq: m.state.topOffSeq,
      sourceSeq: info!.updateSeq,
      maxSeqLag: m.input.topOff.maxSeqLag,
      differing: compared.differing,
      differingCount: compared.differingCount,
      extraInTarget: compared.extraInTarget,
    });
    if (verdict.complete) {
      await saveDoc(m, (s) => {
        s.checkedCounts = { source: sourceCounts, target: targetCounts };
        return 'cutover-approval';
      });
      reportDoc(m, `initial copy complete:\n${formatCounts(compareCounts(m.wanted, sourceCounts, targetCounts))}`);
      return docLoopState(m, { done: true });
    }
    problems = verdict.problems;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new IncompleteCopy(`the copy is not complete after ${ROUNDS} rounds of top-off: ${problems.join('; ')}`);
}
