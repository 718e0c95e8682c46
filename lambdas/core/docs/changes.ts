import type { ChangeRow } from '../ports/couch.ts';

export type ChangeAction =
  /** A doc of a wanted type (or a tombstone of one already in the target): copy every leaf with history. */
  | { readonly kind: 'copy'; readonly id: string; readonly revs: readonly string[]; readonly deleted: boolean }
  /** A doc in the target whose doc_type is no longer one of the wanted types: reported, not copied. */
  | { readonly kind: 'moved-out'; readonly id: string; readonly docType: string }
  | { readonly kind: 'ignore'; readonly id: string };

/**
 * Decides what the top-off does with each change. `inTarget` tells which ids the target already
 * holds: a tombstone carries no doc_type, so a deletion is ours only when we copied the doc.
 */
export function classifyChanges(rows: readonly ChangeRow[], wanted: ReadonlySet<string>, inTarget: ReadonlySet<string>): ChangeAction[] {
  const latest = new Map<string, ChangeRow>();
  for (const row of rows) {
    if (row.id.startsWith('_design/') || row.id.startsWith('_local/')) continue;
    latest.delete(row.id);
    latest.set(row.id, row);
  }
  return [...latest.values()].map((row): ChangeAction => {
    const revs = row.changes.map((c) => c.rev);
    const docType = typeof row.doc?.doc_type === 'string' ? row.doc.doc_type : null;
    if (row.deleted) return inTarget.has(row.id) ? { kind: 'copy', id: row.id, revs, deleted: true } : { kind: 'ignore', id: row.id };
    if (docType !== null && wanted.has(docType)) return { kind: 'copy', id: row.id, revs, deleted: false };
    if (inTarget.has(row.id)) return { kind: 'moved-out', id: row.id, docType: docType ?? '(none)' };
    return { kind: 'ignore', id: row.id };
  });
}

/**
 * The numeric part of a sequence, for "how far behind" only: CouchDB 2+ seqs are opaque strings
 * like `1234-g1AAAA…`, PouchDB's are integers. Null when there is none.
 */
export function seqNumber(seq: string | number | null | undefined): number | null {
  if (seq === null || seq === undefined) return null;
  const m = /^(\d+)/.exec(String(seq));
  return m ? Number(m[1]) : null;
}
