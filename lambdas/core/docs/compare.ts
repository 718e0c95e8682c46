import type { CouchDatabase } from '../ports/couch.ts';
import type { DocTypeIndex } from './doc-type-index.ts';
import type { DocTypeCounts } from './doc-types.ts';

export interface DocComparison {
  /** Live docs per wanted type in the source. */
  readonly sourceCounts: DocTypeCounts;
  /** Of those, the ones the target holds with the same winning revision. */
  readonly targetCounts: DocTypeCounts;
  /** The first ids that differ, and how many do. */
  readonly differing: string[];
  readonly differingCount: number;
  /** Live docs in the target beyond the matching ones (design docs and `known` left out). */
  readonly extraInTarget: number;
}

const KEYS_PER_CALL = 1000;

/**
 * Compares every doc of the wanted types, as the source's index lists them, with the target by
 * winning revision: two `_all_docs` calls by key per page, no bodies read and no view built.
 * `known` counts live target docs that are accounted for otherwise (docs whose type left the set).
 */
export async function compareDocs(index: DocTypeIndex, source: CouchDatabase, target: CouchDatabase, wanted: readonly string[], known = 0): Promise<DocComparison> {
  const sourceCounts: Record<string, number> = Object.fromEntries(wanted.map((t) => [t, 0]));
  const targetCounts: Record<string, number> = { ...sourceCounts };
  const differing: string[] = [];
  let differingCount = 0;
  let cursor: string | null = null;
  do {
    const page: Awaited<ReturnType<DocTypeIndex['page']>> = await index.page(cursor, KEYS_PER_CALL);
    const ids = page.refs.map((r) => r.id);
    if (ids.length) {
      const live = (rows: Awaited<ReturnType<CouchDatabase['allDocs']>>) => new Map(rows.filter((r) => !r.error && r.value && !r.value.deleted).map((r) => [r.id, r.value.rev]));
      const [src, tgt] = await Promise.all([source.allDocs({}, ids).then(live), target.allDocs({}, ids).then(live)]);
      for (const ref of page.refs) {
        const rev = src.get(ref.id);
        if (rev === undefined) continue; // deleted since the index listed it: the top-off carries the tombstone
        sourceCounts[ref.type] = (sourceCounts[ref.type] ?? 0) + 1;
        if (tgt.get(ref.id) === rev) targetCounts[ref.type] = (targetCounts[ref.type] ?? 0) + 1;
        else if (differingCount++ < 10) differing.push(ref.id);
      }
    }
    cursor = page.next;
  } while (cursor !== null);
  const info = await target.info();
  const design = (await target.allDocs({ startkey: '_design/', endkey: '_design0' })).length;
  const matched = Object.values(targetCounts).reduce((a, b) => a + b, 0);
  return { sourceCounts, targetCounts, differing, differingCount, extraInTarget: Math.max(0, (info?.docCount ?? 0) - design - matched - known) };
}
