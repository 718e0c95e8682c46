import { TransientError } from '../errors.ts';
import type { AllDocsRow, CouchDatabase, CouchDoc } from '../ports/couch.ts';
import { rawCompare, type WrittenDoc } from './compare.ts';
import type { DocTypeIndex } from './doc-type-index.ts';
import { isDataDocId } from './doc-types.ts';

/** Every leaf revision of a document as `_all_docs?conflicts=true&include_docs=true` shows it. */
export function leafRevs(row: AllDocsRow): string[] {
  const doc = row.doc;
  if (!doc) return [row.value.rev];
  return [doc._rev, ...(doc._conflicts ?? [])];
}

/** Each doc's leaves as the database holds them now (a deleted doc: its tombstone; an unknown id: none). */
export async function currentLeaves(db: CouchDatabase, ids: readonly string[]): Promise<Map<string, string[]>> {
  if (ids.length === 0) return new Map();
  const rows = await db.allDocs({ include_docs: true, conflicts: true }, ids);
  return new Map(rows.filter((r) => !r.error && r.value).map((r) => [r.id, leafRevs(r)]));
}

/**
 * Reads revisions with their history (`_revisions`), attachments and deletion state. A revision
 * the source does not give (the doc moved on between the two reads) is asked for again by the
 * doc's current leaves; one still not given is a TransientError naming it, so the page is read
 * again, and the run fails loudly if it never can be: nothing is passed over in silence.
 */
export async function readRevisions(source: CouchDatabase, items: readonly { id: string; rev: string }[]): Promise<CouchDoc[]> {
  if (items.length === 0) return [];
  const first = await source.bulkGet(items);
  if (first.missing.length === 0) return first.docs;
  const again = [...(await currentLeaves(source, [...new Set(first.missing.map((m) => m.id))]))].flatMap(([id, revs]) => revs.map((rev) => ({ id, rev })));
  const second = await source.bulkGet(again);
  if (second.missing.length) {
    const m = second.missing[0]!;
    throw new TransientError(`${source.connection}/${source.name} did not give revision ${m.rev} of ${m.id} (${m.error}), twice; the page is read again`);
  }
  return [...first.docs, ...second.docs];
}

/**
 * Copies the given revisions with their history, attachments and deletion state: read with
 * `_bulk_get?revs=true`, written with `new_edits: false`, so the target holds the same `_rev`s and
 * a later update of the source doc extends the same tree instead of conflicting. Writing a
 * revision the target already has changes nothing. Returns the docs written, with their revisions.
 */
export async function copyRevisions(source: CouchDatabase, target: CouchDatabase, items: readonly { id: string; rev: string }[]): Promise<WrittenDoc[]> {
  const docs = await readRevisions(source, items);
  await target.writeRevisions(docs);
  return writtenDocs(docs);
}

/** The docs among these revisions, in `_all_docs` order, each with the revisions written for it. */
export function writtenDocs(docs: readonly CouchDoc[]): WrittenDoc[] {
  const byId = new Map<string, string[]>();
  for (const d of docs) byId.set(d._id, [...(byId.get(d._id) ?? []), d._rev]);
  return [...byId].sort(([a], [b]) => rawCompare(a, b)).map(([id, revs]) => ({ id, revs }));
}

/** A page of the initial copy, read from the source and not yet written. */
export interface ReadPage {
  /** The revisions to write, with history, attachments and deletion state. */
  readonly docs: readonly CouchDoc[];
  /** Docs of the wanted types on this page. */
  readonly copied: number;
  /** Where the next page starts, or null when this was the last. */
  readonly nextCursor: string | null;
  /** The last doc of the page, for messages. */
  readonly lastId: string | null;
}

/**
 * Reads one page of the initial copy: the next docs of the wanted types from the index with their
 * leaves (conflicts too) in the same request, then every leaf with its history. Writes nothing.
 */
export async function readPage(source: CouchDatabase, index: DocTypeIndex, cursor: string | null, pageSize: number): Promise<ReadPage> {
  const { refs, next } = await index.page(cursor, pageSize, { leaves: true });
  const docs = await readRevisions(source, refs.flatMap((r) => (r.leaves ?? []).map((rev) => ({ id: r.id, rev }))));
  return { docs, copied: refs.length, lastId: refs[refs.length - 1]?.id ?? null, nextCursor: next };
}

/**
 * One page of the initial copy: read (`readPage`) and written with `new_edits: false`, so the
 * target holds the same revision trees. Pages are idempotent.
 */
export async function copyPage(source: CouchDatabase, target: CouchDatabase, index: DocTypeIndex, cursor: string | null, pageSize: number): Promise<ReadPage> {
  const page = await readPage(source, index, cursor, pageSize);
  await target.writeRevisions(page.docs);
  return page;
}

/**
 * Which of these docs the application has changed in the target: a leaf there the source has never
 * had (an edit or a deletion made in the new database). Such a doc is the application's now.
 */
export async function changedInTarget(source: CouchDatabase, target: CouchDatabase, ids: readonly string[]): Promise<Map<string, string>> {
  const leaves = await currentLeaves(target, ids);
  if (leaves.size === 0) return new Map();
  const unknown = await source.revsDiff(Object.fromEntries(leaves));
  return new Map(Object.entries(unknown).filter(([, revs]) => revs.length > 0).map(([id, revs]) => [id, revs[0]!]));
}
