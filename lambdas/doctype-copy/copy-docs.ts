import type { TaskDeps } from '../core/ports/task-deps.ts';
import { copyPage } from '../core/docs/copier.ts';
import { docLoopState, openDocMigration, pausedReason, reportDoc, saveDoc, timeLeft, type DocLoopState, type DocTaskEvent } from './open-doc-migration.ts';

/** The initial copy, a page of docs per step, until the time budget is spent. */
export async function copyDocs(event: DocTaskEvent, deps: TaskDeps): Promise<DocLoopState> {
  const m = await openDocMigration(event, deps);
  while (m.phase === 'initial-copy' && timeLeft(m)) {
    const paused = await pausedReason(m);
    if (paused) {
      reportDoc(m, 'throttled', paused, 5);
      return docLoopState(m, { done: false, waitSeconds: 5, throttle: paused });
    }
    const page = await copyPage(m.source, m.target, m.index, m.state.initialCursor, m.input.page.docs);
    await saveDoc(m, (s) => {
      s.docsCopied += page.copied;
      s.revisionsWritten += page.revisions;
      if (page.nextCursor !== null) {
        s.initialCursor = page.nextCursor;
        return;
      }
      s.initialCursor = page.lastId ?? s.initialCursor;
      s.initialDone = true;
      s.quietSince = new Date(deps.now()).toISOString();
      return 'top-off';
    });
    reportDoc(m, `copied ${page.copied} docs (${page.revisions} revisions) up to id ${page.lastId ?? '(end)'}`);
  }
  return docLoopState(m, { done: m.phase !== 'initial-copy' });
}
