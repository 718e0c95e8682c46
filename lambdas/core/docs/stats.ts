import { WriteConflict } from '../errors.ts';
import type { CouchDatabase } from '../ports/couch.ts';
import type { DocTypeCounts } from './doc-types.ts';

/** ferry's own view of live docs by doc_type, with a `_count` reduce; created in each database it counts. */
export const STATS_DDOC = 'ferry';
export const STATS_VIEW = 'doc_types';
const MAP = "function (doc) { if (typeof doc.doc_type === 'string') { emit(doc.doc_type, null); } }";

export async function ensureStatsView(db: CouchDatabase): Promise<void> {
  const id = `_design/${STATS_DDOC}`;
  const existing = await db.get(id);
  const views = (existing?.views ?? {}) as Record<string, { map?: string }>;
  if (views[STATS_VIEW]?.map === MAP) return;
  try {
    await db.put({ ...(existing ?? {}), _id: id, views: { ...views, [STATS_VIEW]: { map: MAP, reduce: '_count' } } });
  } catch (err) {
    // Another task created it at the same moment: the same definition either way.
    if (err instanceof WriteConflict) return;
    throw err;
  }
}

/** Live docs per doc type (and nothing else), from the stats view. */
export async function countByType(db: CouchDatabase, docTypes: readonly string[]): Promise<DocTypeCounts> {
  const { rows } = await db.view(STATS_DDOC, STATS_VIEW, { group: true }, docTypes);
  const out: Record<string, number> = {};
  for (const t of docTypes) out[t] = 0;
  for (const r of rows) if (typeof r.key === 'string') out[r.key] = Number(r.value);
  return out;
}

/** Ids of live docs of these types, first `limit` of them. */
export async function idsOfTypes(db: CouchDatabase, docTypes: readonly string[], limit: number): Promise<string[]> {
  const { rows } = await db.view(STATS_DDOC, STATS_VIEW, { reduce: false, limit }, docTypes);
  return [...new Set(rows.map((r) => r.id!).filter(Boolean))];
}
