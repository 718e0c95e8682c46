import { DatabaseError, WriteConflict } from '../errors.ts';
import type { CouchDatabase, CouchDoc } from '../ports/couch.ts';
import { isDataDocId, type DocTypeCounts } from './doc-types.ts';

/** A live doc of a wanted type, as an index lists it. */
export interface DocRef {
  readonly type: string;
  readonly id: string;
  /** Its leaf revisions (winner first, then conflicts), when the page was asked for them. */
  readonly leaves?: readonly string[];
}

/** The leaves of a doc read with `include_docs=true&conflicts=true`. */
function leavesOf(doc: CouchDoc | null | undefined): string[] | undefined {
  return doc ? [doc._rev, ...(doc._conflicts ?? [])] : undefined;
}

/**
 * Where ferry finds the docs of the wanted types: a view keyed `[doc_type, _id]` (CommCare's
 * `all_docs/by_doc_type`, or ferry's own when the operator allows it), or a scan of `_all_docs`
 * that reads every doc and writes nothing. Cursors are opaque strings kept in the checkpoint.
 */
export interface DocTypeIndex {
  /** What it is, for messages. */
  readonly label: string;
  /**
   * The next docs of the wanted types after `cursor`, at most `limit` of them (a scan may return
   * fewer while docs remain: it reads `limit` docs of any type), and the cursor after them, null
   * when none are left. A page starts at the cursor's key and drops that key's own row, so a doc
   * deleted in between never makes it skip the next one. With `leaves`, each ref carries its
   * doc's leaf revisions, read in the same request.
   */
  page(cursor: string | null, limit: number, options?: { leaves?: boolean }): Promise<{ refs: DocRef[]; next: string | null }>;
  /** Live docs per wanted type. */
  counts(): Promise<DocTypeCounts>;
  /** Whether `counts` reads an index (a view's reduce) rather than every doc of the source. */
  readonly countsCheaply: boolean;
}

/** A view whose keys are `[doc_type, _id]`. */
export class ViewIndex implements DocTypeIndex {
  readonly label: string;
  readonly countsCheaply = true;
  constructor(private readonly db: CouchDatabase, private readonly ddoc: string, private readonly view: string, private readonly wanted: readonly string[]) {
    this.label = `view ${ddoc}/${view} of ${db.name}`;
  }

  async page(cursor: string | null, limit: number, options: { leaves?: boolean } = {}) {
    let { t, id } = cursor === null ? { t: 0, id: null as string | null } : (JSON.parse(cursor) as { t: number; id: string | null });
    const refs: DocRef[] = [];
    while (refs.length < limit && t < this.wanted.length) {
      const type = this.wanted[t]!;
      const ask = limit - refs.length + (id === null ? 0 : 1);
      const qs = { startkey: [type, id ?? ''], endkey: [type, {}], reduce: false, limit: ask, ...(options.leaves ? { include_docs: true, conflicts: true } : {}) };
      const { rows } = await this.db.view(this.ddoc, this.view, qs);
      for (const r of rows) {
        if (r.id === undefined || r.id === id || !isDataDocId(r.id)) continue;
        const leaves = options.leaves ? leavesOf(r.doc) : undefined;
        // with leaves asked for, a row without its doc is one deleted since the view was read, and
        // one whose doc_type is no longer this type changed since (the top-off sees that change)
        if (options.leaves && (!leaves || r.doc?.doc_type !== type)) continue;
        refs.push(leaves ? { type, id: r.id, leaves } : { type, id: r.id });
      }
      if (rows.length < ask) {
        t += 1;
        id = null;
      } else {
        id = rows[rows.length - 1]!.id!;
      }
    }
    return { refs, next: t >= this.wanted.length ? null : JSON.stringify({ t, id }) };
  }

  async counts(): Promise<DocTypeCounts> {
    const out: Record<string, number> = {};
    for (const type of this.wanted) {
      try {
        const { rows } = await this.db.view(this.ddoc, this.view, { startkey: [type], endkey: [type, {}], reduce: true });
        out[type] = Number(rows[0]?.value ?? 0);
      } catch (err) {
        // A view without a reduce: count its rows.
        if (!(err instanceof DatabaseError) || err instanceof WriteConflict) throw err;
        out[type] = await this.countRows(type);
      }
    }
    return out;
  }

  private async countRows(type: string): Promise<number> {
    let n = 0;
    let cursor: string | null = JSON.stringify({ t: this.wanted.indexOf(type), id: null });
    for (;;) {
      const { refs, next } = await this.page(cursor, 5000);
      n += refs.filter((r) => r.type === type).length;
      if (next === null || JSON.parse(next).t !== this.wanted.indexOf(type)) return n;
      cursor = next;
    }
  }
}

/** Every doc read through `_all_docs`, bodies included: slow on a big database, but nothing is written to it. */
export class ScanIndex implements DocTypeIndex {
  readonly label: string;
  readonly countsCheaply = false;
  private readonly wanted: ReadonlySet<string>;
  constructor(private readonly db: CouchDatabase, wanted: readonly string[]) {
    this.label = `a scan of ${db.name}'s _all_docs`;
    this.wanted = new Set(wanted);
  }

  async page(cursor: string | null, limit: number, options: { leaves?: boolean } = {}) {
    const qs: Record<string, unknown> = { include_docs: true, limit: limit + (cursor === null ? 0 : 1), ...(options.leaves ? { conflicts: true } : {}) };
    // nano encodes startkey as JSON itself
    if (cursor !== null) qs.startkey = cursor;
    const rows = await this.db.allDocs(qs);
    const refs = rows
      .filter((r) => r.id !== cursor && isDataDocId(r.id) && typeof r.doc?.doc_type === 'string' && this.wanted.has(r.doc.doc_type))
      .map((r) => (options.leaves ? { type: r.doc!.doc_type as string, id: r.id, leaves: leavesOf(r.doc) } : { type: r.doc!.doc_type as string, id: r.id }));
    const full = rows.length === qs.limit;
    return { refs, next: full ? rows[rows.length - 1]!.id : null };
  }

  async counts(): Promise<DocTypeCounts> {
    const out: Record<string, number> = Object.fromEntries([...this.wanted].map((t) => [t, 0]));
    let cursor: string | null = null;
    for (;;) {
      const { refs, next } = await this.page(cursor, 5000);
      for (const r of refs) out[r.type] = (out[r.type] ?? 0) + 1;
      if (next === null) return out;
      cursor = next;
    }
  }
}

/** ferry's own view of live docs by `[doc_type, _id]`, with a `_count` reduce. */
export const FERRY_DDOC = 'ferry';
export const FERRY_VIEW = 'by_doc_type';
const MAP = "function (doc) { if (typeof doc.doc_type === 'string') { emit([doc.doc_type, doc._id], null); } }";

/** Creates (or updates) ferry's view in a database. Only where ferry may write: the target, or a source whose operator allowed it. */
export async function ensureFerryView(db: CouchDatabase): Promise<void> {
  const id = `_design/${FERRY_DDOC}`;
  const existing = await db.get(id);
  const views = (existing?.views ?? {}) as Record<string, { map?: string }>;
  if (views[FERRY_VIEW]?.map === MAP) return;
  try {
    await db.put({ ...(existing ?? {}), _id: id, views: { ...views, [FERRY_VIEW]: { map: MAP, reduce: '_count' } } });
  } catch (err) {
    // Another task created it at the same moment: the same definition either way.
    if (err instanceof WriteConflict) return;
    throw err;
  }
}

/** Whether ferry's view is in the database (it writes nothing to find out). */
export async function hasFerryView(db: CouchDatabase): Promise<boolean> {
  const ddoc = await db.get(`_design/${FERRY_DDOC}`);
  return Boolean((ddoc?.views as Record<string, { map?: string }> | undefined)?.[FERRY_VIEW]?.map === MAP);
}

/** The index an input asks for: the view it names (`ddoc/view`), ferry's own view, or a scan. */
export function docTypeIndex(db: CouchDatabase, wanted: readonly string[], how: { view?: string; ferryView?: boolean }): DocTypeIndex {
  if (how.view) {
    const [ddoc, view] = how.view.split('/') as [string, string];
    return new ViewIndex(db, ddoc, view, wanted);
  }
  if (how.ferryView) return new ViewIndex(db, FERRY_DDOC, FERRY_VIEW, wanted);
  return new ScanIndex(db, wanted);
}
