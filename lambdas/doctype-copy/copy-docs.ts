import type { TaskDeps } from '../core/ports/task-deps.ts';
import { checkWritten } from '../core/docs/compare.ts';
import { readPage, writtenDocs, type ReadPage } from '../core/docs/copier.ts';
import { docLoopState, openDocMigration, pausedReason, reportDoc, saveDoc, timeLeft, type DocLoopState, type DocTaskEvent } from './open-doc-migration.ts';

/**
 * The initial copy, a page of docs per step, until the time budget is spent. The next page is
 * read while this one is written; the checkpoint moves past a page only once it is written and
 * the target shows each doc's winning revision as the source does (see checkWritten).
 */
export async function copyDocs(event: DocTaskEvent, deps: TaskDeps): Promise<DocLoopState> {
  const m = await openDocMigration(event, deps);
  const read = (cursor: string | null) => readPage(m.source, m.index, cursor, m.input.page.docs);
  let ahead: Promise<ReadPage> | null = null;
  try {
    while (m.phase === 'initial-copy' && timeLeft(m)) {
      const paused = await pausedReason(m);
      if (paused) {
        reportDoc(m, 'throttled', paused, 5);
        return docLoopState(m, { done: false, waitSeconds: 5, throttle: paused });
      }
      const page: ReadPage = await (ahead ?? read(m.state.initialCursor));
      ahead = page.nextCursor !== null ? read(page.nextCursor) : null;
      await m.target.writeRevisions(page.docs);
      // checked behind the copy, before the checkpoint moves past the page
      await checkWritten(m.source, m.target, writtenDocs(page.docs));
      await saveDoc(m, (s) => {
        s.docsCopied += page.copied;
        s.revisionsWritten += page.docs.length;
        if (page.nextCursor !== null) {
          s.initialCursor = page.nextCursor;
          return;
        }
        s.initialCursor = page.lastId ?? s.initialCursor;
        s.initialDone = true;
        s.quietSince = new Date(deps.now()).toISOString();
        return 'top-off';
      });
      reportDoc(m, `copied ${page.copied} docs (${page.docs.length} revisions) up to id ${page.lastId ?? '(end)'}`);
    }
  } finally {
    // a page read ahead and not written is read again by the next step
    await ahead?.catch(() => undefined);
  }
  return docLoopState(m, { done: m.phase !== 'initial-copy' });
}
