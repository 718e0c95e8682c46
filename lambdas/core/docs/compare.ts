import { TransientError } from '../errors.ts';
import type { AllDocsRow, CouchDatabase } from '../ports/couch.ts';
import { isDataDocId, type DocTypeCounts } from './doc-types.ts';

/** Each doc's winning revision, live docs only. */
type Winners = Map<string, string>;
/** Each doc's winning revision as a lookup by key gives it: a deleted doc's is its tombstone. */
type States = Map<string, { readonly rev: string; readonly deleted: boolean }>;

const live = (rows: readonly AllDocsRow[]): Winners => new Map(rows.filter((r) => !r.error && r.value && !r.value.deleted).map((r) => [r.id, r.value.rev]));

/** The winning revision of each live doc, looked up by key (no bodies read). */
async function winnersByKey(db: CouchDatabase, ids: readonly string[]): Promise<Winners> {
  return ids.length === 0 ? new Map() : live(await db.allDocs({}, ids));
}

async function statesByKey(db: CouchDatabase, ids: readonly string[]): Promise<States> {
  if (ids.length === 0) return new Map();
  const rows = await db.allDocs({}, ids);
  return new Map(rows.filter((r) => !r.error && r.value).map((r) => [r.id, { rev: r.value.rev, deleted: Boolean(r.value.deleted) }]));
}

/** How many rows of `_all_docs` a range read may go through per id asked for before the rest is looked up by key. */
const RANGE_ROWS_PER_ID = 8;

/**
 * The winning revision of each live doc among `ids`: ids in `_all_docs` order are read as a range
 * (a sequential read, no bodies), in pages of twice their number, through at most eight rows per
 * id (other docs lie between them: other types, other pages); what it did not reach, and ids out
 * of order, are looked up by key. A doc the range passes without showing is not live there.
 */
async function winnersOf(db: CouchDatabase, ids: readonly string[]): Promise<Winners> {
  const sorted = ids.every((id, i) => i === 0 || rawCompare(ids[i - 1]!, id) < 0);
  if (!sorted || ids.length < 2) return winnersByKey(db, ids);
  const wanted = new Set(ids);
  const out: Winners = new Map();
  const limit = 2 * ids.length;
  let read = 0;
  let reached: string | null = null;
  while (read < RANGE_ROWS_PER_ID * ids.length) {
    const after = reached;
    const rows: AllDocsRow[] = (await db.allDocs({ startkey: after ?? ids[0], endkey: ids[ids.length - 1], limit: limit + (after === null ? 0 : 1) })).filter((r) => r.id !== after);
    read += rows.length;
    for (const [id, rev] of live(rows.filter((r) => wanted.has(r.id)))) out.set(id, rev);
    if (rows.length < limit) return out;
    reached = rows[rows.length - 1]!.id;
  }
  // a range cut short: whatever lies past where it stopped is looked up by key (no guess at the server's collation)
  const rest = ids.filter((id) => !out.has(id) && (reached === null || rawCompare(id, reached) > 0));
  for (const [id, rev] of await winnersByKey(db, rest)) out.set(id, rev);
  return out;
}

/** The order of `_all_docs`: CouchDB sorts doc ids "raw", by their UTF-8 bytes, not as JavaScript compares strings. */
export function rawCompare(a: string, b: string): number {
  // UTF-8 byte order is code point order; UTF-16 units differ from it only where surrogates meet U+E000…U+FFFF
  const unit = (c: number) => (c >= 0xd800 && c <= 0xdfff ? c + 0x2000 : c >= 0xe000 ? c - 0x800 : c);
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const d = unit(a.charCodeAt(i)) - unit(b.charCodeAt(i));
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** A doc just written to the target, with the revisions written for it. */
export interface WrittenDoc {
  readonly id: string;
  readonly revs: readonly string[];
}

/**
 * Checks docs right behind their write, as table-copy verifies a chunk behind its copy: the
 * target's winning revision of each must be the source's. A doc the source changed since it was
 * read (its winner now is none of those ferry wrote) is the top-off's, which replays every change
 * after the recorded seq. Where the target shows another winner, it must at least hold the
 * source's: then the winner there is a leaf the application wrote (after the cut-over), or one the
 * source has since deleted or built on, which the top-off carries too. A target without the
 * source's winning revision is a write that did not land: a TransientError, so the page or batch
 * is written again before the checkpoint moves, and the run fails loudly if it never lands.
 * Returns how many docs were checked.
 */
export async function checkWritten(source: CouchDatabase, target: CouchDatabase, docs: readonly WrittenDoc[]): Promise<number> {
  if (docs.length === 0) return 0;
  const inTarget = await winnersOf(target, docs.map((d) => d.id));
  // a tombstone written, or a winner not written: looked at again by key, with the source
  const suspects = docs.filter((d) => !d.revs.includes(inTarget.get(d.id) ?? ''));
  if (suspects.length === 0) return docs.length;
  const ids = suspects.map((d) => d.id);
  const [targetNow, sourceNow] = await Promise.all([statesByKey(target, ids), statesByKey(source, ids)]);
  const ours = suspects.flatMap((d) => {
    const s = sourceNow.get(d.id);
    const t = targetNow.get(d.id);
    // the same winner on both sides, or a source that moved on: nothing to look at
    return !s || (t && s.rev === t.rev) || !d.revs.includes(s.rev) ? [] : [{ id: d.id, s, t }];
  });
  if (ours.length === 0) return docs.length;
  const lacking = await target.revsDiff(Object.fromEntries(ours.map((o) => [o.id, [o.s.rev]])));
  const lost = ours.find((o) => (lacking[o.id]?.length ?? 0) > 0);
  if (lost) {
    const { id, s, t } = lost;
    throw new TransientError(
      `${target.connection}/${target.name} shows ${t ? `${t.deleted ? 'deletion' : 'revision'} ${t.rev}` : 'nothing'} for doc ${id} and lacks the source's ${s.deleted ? 'deletion' : 'winner'} ${s.rev} right after ferry wrote it; it is written again`,
    );
  }
  return docs.length;
}

export interface TargetComparison {
  /** Live docs per type in the target that the source holds with the same winning revision. */
  readonly matched: DocTypeCounts;
  /** Live docs in the target that the source does not hold live with the same winning revision, with their type in the target. */
  readonly mismatched: readonly { readonly id: string; readonly type: string }[];
  readonly mismatchedCount: number;
}

const TARGET_PAGE = 2000;
const MISMATCHED_KEPT = 10_000;

/**
 * The whole target against the source, by key and winning revision: every live doc of the target
 * (design docs left out) must be live in the source with the same winning revision. The target is
 * read in order with its bodies (each doc's type, for the counts); the source without bodies, as
 * ranges of `_all_docs` over the page's ids, by key where other docs lie thick between them.
 * Docs of the wanted types the target lacks were checked behind the copy (pages and top-off
 * batches); this pass finds what the target holds that it should not.
 */
export async function compareTargetWithSource(source: CouchDatabase, target: CouchDatabase): Promise<TargetComparison> {
  const matched: Record<string, number> = {};
  const mismatched: { id: string; type: string }[] = [];
  let mismatchedCount = 0;
  let cursor: string | null = null;
  for (;;) {
    const qs: Record<string, unknown> = { include_docs: true, limit: TARGET_PAGE + (cursor === null ? 0 : 1), ...(cursor === null ? {} : { startkey: cursor }) };
    const rows = (await target.allDocs(qs)).filter((r) => r.id !== cursor);
    const docs = rows.filter((r) => isDataDocId(r.id) && !r.value.deleted);
    const inSource = await winnersOf(source, docs.map((r) => r.id));
    for (const r of docs) {
      const type = typeof r.doc?.doc_type === 'string' ? r.doc.doc_type : '(none)';
      if (inSource.get(r.id) === r.value.rev) matched[type] = (matched[type] ?? 0) + 1;
      else if (mismatchedCount++ < MISMATCHED_KEPT) mismatched.push({ id: r.id, type });
    }
    if (rows.length < TARGET_PAGE) return { matched, mismatched, mismatchedCount };
    cursor = rows[rows.length - 1]!.id;
  }
}

