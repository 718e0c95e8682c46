import type { AllDocsRow, CouchDatabase } from '../ports/couch.ts';
import { isDataDocId } from './doc-types.ts';

/** Every leaf revision of a document as `_all_docs?conflicts=true&include_docs=true` shows it. */
export function leafRevs(row: AllDocsRow): string[] {
  const doc = row.doc;
  if (!doc) return [row.value.rev];
  return [doc._rev, ...(doc._conflicts ?? [])];
}

/**
 * Copies the given revisions with their history (`_revisions`), attachments and deletion state:
 * read with `_bulk_get?revs=true`, written with `new_edits: false`, so the target holds the same
 * `_rev`s and a later update of the source doc extends the same tree instead of conflicting.
 * Writing a revision the target already has changes nothing. Returns the revisions written.
 */
export async function copyRevisions(source: CouchDatabase, target: CouchDatabase, items: readonly { id: string; rev: string }[]): Promise<number> {
  if (items.length === 0) return 0;
  const docs = await source.bulkGet(items);
  await target.writeRevisions(docs);
  return docs.length;
}

export interface PageResult {
  /** Docs of the wanted types on this page. */
  readonly copied: number;
  readonly revisions: number;
  /** Id to continue after, or null when the page was the last. */
  readonly nextCursor: string | null;
  readonly lastId: string | null;
}

/**
 * One page of the initial copy: `_all_docs` in id order after `cursor`, the wanted doc types kept,
 * every leaf (conflicts too) copied with history. Pages are idempotent.
 */
export async function copyPage(source: CouchDatabase, target: CouchDatabase, wanted: ReadonlySet<string>, cursor: string | null, pageSize: number): Promise<PageResult> {
  const qs: Record<string, unknown> = { include_docs: true, conflicts: true, limit: pageSize };
  if (cursor !== null) Object.assign(qs, { startkey: cursor, skip: 1 });
  const rows = await source.allDocs(qs);
  const mine = rows.filter((r) => isDataDocId(r.id) && typeof r.doc?.doc_type === 'string' && wanted.has(r.doc.doc_type));
  const revisions = await copyRevisions(source, target, mine.flatMap((r) => leafRevs(r).map((rev) => ({ id: r.id, rev }))));
  const lastId = rows.length ? rows[rows.length - 1]!.id : null;
  return { copied: mine.length, revisions, lastId, nextCursor: rows.length < pageSize ? null : lastId };
}
