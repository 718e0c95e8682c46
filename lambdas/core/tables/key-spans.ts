import { sameChecksum, rowHashExpr, type RangeChecksum } from '../checksum.ts';
import { VerificationFailed } from '../errors.ts';
import { qualified } from '../identifiers.ts';
import type { KeyRange, KeyValue } from '../keys.ts';
import type { SqlConnection } from '../ports/sql.ts';
import { str } from '../ports/sql.ts';
import { checkThrottle, nextVerifyKeys, report, resizeChunk, save, timeLeft, type CopyOutcome, type Migration } from './chunked-copy.ts';
import { copyIds, IDS_PER_STATEMENT, keyOf, type CopyTables } from './copier.ts';
import { deliverRows, hashesOf } from './delivery.ts';
import { spanRange, type KeyLedger, type KeySpan } from './ledger.ts';
import { endRound, settleRound, type SweepingState, type SweepOutcome, type SweepSettings } from './sweeper.ts';
import { checksumRange, rowHashes, rowHashesBothSides } from './verifier.ts';

/**
 * table-copy of a table keyed by anything but one integer column (a UUID, a binary key, several
 * columns). Such keys need not grow with time: a row the old table receives late can land in any
 * range already copied, so nothing here assumes new rows have larger keys. Instead every range of
 * keys verified is recorded in the key ledger (see KeyLedger) with what the source's rows of it
 * added up to when they were delivered (count and XOR of row hashes), and looked at again by
 * comparing the source with that record:
 *
 * - equal: nothing arrived in the range (one index range scan of the source, nothing read from the target);
 * - otherwise the source's rows of the range and the target's are compared row by row: the rows the
 *   target lacks are copied (delivered, see deliverRows) and the record becomes what the source holds.
 *
 * Before the cut-over every row the target lacks is the old table's and is copied; a row of the old
 * table changed since it was delivered is a difference. After it, the new table is the
 * application's: a row it lacks may be one the application deleted there. The range then gained
 * `k` rows (its count now less the count delivered), and when exactly `k` rows are missing from the
 * target they are the late ones (a delivered row the application deleted would make one more); any
 * other count cannot be told apart, and the run stops, naming the range, with nothing copied.
 */

/** What a task keeps in the checkpoint for a migration copied by such a key. */
export interface KeySpanState extends SweepingState {
  verifiedUpTo: KeyValue | null;
  rangesVerified: number;
  rowsVerified: string;
  rangesRepaired: number;
  /** The number of the next span verification records (see spanBlock); absent: `rangesVerified` + 1. */
  nextSpan?: number;
  /** The catch-up's pass over the ledger under way: the last span looked at (null: none yet) and rows found so far. */
  keyPass?: { cursor: number | null; found: number } | null;
}

type KeyMigration = Migration<SweepSettings, KeySpanState, string>;

/** 64 bits of each row's hash, XORed, as the range checksum computes it in SQL (see checksumSelect). */
export function xorOf(hashes: Iterable<string>): string {
  let x = 0n;
  for (const h of hashes) x ^= BigInt(`0x${h.slice(0, 16)}`);
  return x.toString();
}

const listed = (keys: readonly string[]) => `${keys.slice(0, 5).join(', ')}${keys.length > 5 ? ` and ${keys.length - 5} more` : ''}`;

/** How a range of keys is named to an operator. */
export function describeKeys(t: Pick<CopyTables, 'key' | 'idColumn'>, range: KeyRange): string {
  return `keys (${keyOf(t).names}) ${keyOf(t).describe(range)}`;
}

export interface KeyVerdict {
  readonly range: KeyRange;
  /** The source's rows of the range when compared: every one of them is in the target, equal. */
  readonly now: RangeChecksum;
  /** Rows the target holds in the range that the source does not: the application's own. */
  readonly theirs: number;
  readonly repaired: boolean;
}

/**
 * Verifies a range of keys before the cut-over: the source's rows of it that the target holds must
 * be equal there. The target may also hold rows of the application's own in the range (it writes
 * the new table once the copy flags are set, and its keys may fall anywhere): those are left alone.
 * Source rows the target lacks are copied again; any still missing (written to the source while
 * the range was compared, or refused by the target) are left out of what the range records as
 * delivered, so the next look at it finds them (see lookAtSpan, where a row the target refuses stops
 * the run with the database's reason). A source row the target holds with other content fails, naming the keys.
 */
export async function verifyKeys(t: CopyTables, range: KeyRange): Promise<KeyVerdict> {
  const key = keyOf(t);
  const [source, target] = await Promise.all([checksumRange(t.source, t.sourceTable, key, t.hash.source, range), checksumRange(t.target, t.targetTable, key, t.hash.target, range)]);
  if (sameChecksum(source, target)) return { range, now: source, theirs: 0, repaired: false };
  const [sourceRows, targetRows] = await rowHashesBothSides(t, range);
  const inTarget = new Map(targetRows.map((r) => [r.id, r.hash]));
  const missing = sourceRows.filter((r) => !inTarget.has(r.id)).map((r) => r.id);
  if (missing.length) {
    await copyIds(t, missing);
    for (const [id, hash] of await hashesOf(t.target, t.targetTable, t, t.hash.target, missing)) inTarget.set(id, hash);
  }
  const wrong = sourceRows.filter((r) => inTarget.has(r.id) && inTarget.get(r.id) !== r.hash).map((r) => r.id);
  if (wrong.length) {
    throw new VerificationFailed(
      `${describeKeys(t, range)} differ: ${t.targetTable.table} holds ${wrong.length} of the source's rows with other content (${listed(wrong)}). ` +
        `The application wrote rows under those keys there, or ${t.targetTable.table} changes what it is given (a narrower type, another character set). Nothing was deleted.`,
    );
  }
  const delivered = sourceRows.filter((r) => inTarget.has(r.id));
  const ours = new Set(sourceRows.map((r) => r.id));
  return {
    range,
    now: { rowCount: String(delivered.length), checksum: xorOf(delivered.map((r) => r.hash)) },
    theirs: targetRows.filter((r) => !ours.has(r.id)).length,
    repaired: missing.length > 0,
  };
}

/** Records a verified range as the ledger's next span, and counts it in the state (saved by the caller). */
export async function recordKeySpan(s: KeySpanState, ledger: KeyLedger, verdict: KeyVerdict): Promise<void> {
  const { range, now } = verdict;
  const seq = s.nextSpan ?? s.rangesVerified + 1;
  await ledger.append({ seq, lo: range.lo, hi: range.hi, rows: now.rowCount, checksum: now.checksum });
  s.nextSpan = seq + 1;
  s.verifiedUpTo = range.hi;
  s.rangesVerified += 1;
  s.rowsVerified = (BigInt(s.rowsVerified) + BigInt(now.rowCount)).toString();
  if (verdict.repaired) s.rangesRepaired += 1;
}

/**
 * Verifies the keys copied up to `upTo`, range after range from just after the last one verified,
 * recording each in the ledger. `each` runs after every range (the throttle, the budget): false stops.
 */
export async function verifyKeysUpTo(m: KeyMigration, tables: CopyTables, ledger: KeyLedger, upTo: KeyValue, each?: (v: KeyVerdict, millis: number) => Promise<boolean>): Promise<boolean> {
  for (;;) {
    const range = await nextVerifyKeys({ ...m, tables, source: tables.source } as KeyMigration, m.state.verifiedUpTo, upTo);
    if (range === null) return true;
    const started = m.deps.now();
    const verdict = await verifyKeys(tables, range);
    await recordKeySpan(m.state, ledger, verdict);
    if (each && !(await each(verdict, m.deps.now() - started))) return false;
  }
}

/** What a look at one span found. */
export type SpanLook =
  | { readonly kind: 'same' }
  | { readonly kind: 'looked'; readonly late: number; readonly rows: string; readonly difference: string | null };

/**
 * Looks at one span of the ledger again and delivers what arrived in it (see the top of this file):
 * `before` the cut-over every row the target lacks is copied, and rows changed in the old table
 * since they were delivered are a difference (named, nothing overwritten); `after` it only rows that
 * are surely late are, and a span where they cannot be told apart stops the run.
 */
export async function lookAtSpan(t: CopyTables, ledger: KeyLedger, span: KeySpan, when: 'before' | 'after'): Promise<SpanLook> {
  const key = keyOf(t);
  const range = spanRange(span);
  const quick = await checksumRange(t.source, t.sourceTable, key, t.hash.source, range);
  const same = (now: { rows: string; checksum: string }) => now.rows === span.rows && now.checksum === span.checksum;
  if (same({ rows: quick.rowCount, checksum: quick.checksum }) && !span.deleting) return { kind: 'same' };
  const [sourceRows, targetRows] = await rowHashesBothSides(t, range);
  const now = { rows: String(sourceRows.length), checksum: xorOf(sourceRows.map((r) => r.hash)) };
  if (same(now) && !span.deleting) return { kind: 'same' };
  const inTarget = new Map(targetRows.map((r) => [r.id, r.hash]));
  const lacking = sourceRows.filter((r) => !inTarget.has(r.id));
  const changed = sourceRows.filter((r) => inTarget.has(r.id) && inTarget.get(r.id) !== r.hash).map((r) => r.id);
  if (when === 'after' && !settlesAfter(span, now, lacking)) {
    const gained = sourceRows.length - Number(span.rows);
    throw new VerificationFailed(
      `${describeKeys(t, range)} of ${t.sourceTable.table} hold ${gained} rows more than were delivered, and ${t.targetTable.table} lacks ${lacking.length} of the span's rows${lacking.length ? ` (${listed(lacking.map((r) => r.id))})` : ''}: ` +
        'rows written to the old table since the cut-over cannot be told apart from delivered rows the application has deleted from the new table since, or one has a key the new table already holds (its own row). ' +
        `No row was copied or deleted. Copy the late rows to ${t.targetTable.table} by hand (under another key where theirs is taken), delete them from ${t.sourceTable.table}, then run again.`,
    );
  }
  // Before the cut-over a row changed in the old table since it was delivered stays a difference: the record keeps what was delivered.
  const keepsDifference = when === 'before' && changed.length > 0;
  const record = (book: KeyLedger, delivered: readonly KeyValue[]) => {
    if (!keepsDifference) return book.update({ seq: span.seq, ...now });
    const added = new Set(delivered);
    const hashes = sourceRows.filter((r) => added.has(r.id)).map((r) => r.hash);
    return book.update({ seq: span.seq, rows: (BigInt(span.rows) + BigInt(hashes.length)).toString(), checksum: (BigInt(span.checksum) ^ BigInt(xorOf(hashes))).toString() });
  };
  let late = 0;
  if (lacking.length) late = (await deliverRows(t, lacking.map((r) => r.id), (tx, delivered) => record(ledger.on(tx), delivered))).length;
  else await record(ledger, []);
  const difference = keepsDifference
    ? `${describeKeys(t, range)}: ${changed.length} rows of ${t.sourceTable.table} changed after they were delivered (e.g. ${listed(changed)}), and ${t.targetTable.table} holds them as they were`
    : null;
  return { kind: 'looked', late, rows: now.rows, difference };
}

/**
 * After the cut-over, whether the rows the target lacks are exactly the rows written late to the
 * span, so delivering them (and nothing else) settles it. The span held `rows` rows adding up to
 * `checksum` when delivered; it holds `now` now. The late rows are the rows it gained: as many as
 * its count grew, adding up to the XOR of the two checksums. So the rows the target lacks are
 * they when they are that many and add up to that: a delivered row the application deleted from the
 * target, or a late row under a key the target already holds, makes the count or the sum differ.
 * None lacking and none gained (rows changed or deleted in the old table after delivery, which are
 * not carried over) settles it too. A span being deleted when a run stopped (see deleteSpan) may
 * have lost every delivered row: then either what was recorded or nothing is what it held.
 */
function settlesAfter(span: KeySpan, now: { rows: string; checksum: string }, lacking: readonly { hash: string }[]): boolean {
  const bases = [{ rows: span.rows, checksum: span.checksum }, ...(span.deleting ? [{ rows: '0', checksum: '0' }] : [])];
  return bases.some((base) => {
    const gained = BigInt(now.rows) - BigInt(base.rows);
    if (lacking.length === 0) return gained <= 0n;
    return gained === BigInt(lacking.length) && xorOf(lacking.map((r) => r.hash)) === (BigInt(now.checksum) ^ BigInt(base.checksum)).toString();
  });
}

/** The source's rows after `after` (from the lowest with null), in key order, at most `limit`, with their hashes. */
async function rowsAfter(t: CopyTables, after: KeyValue | null, limit: number): Promise<{ id: KeyValue; hash: string }[]> {
  const key = keyOf(t);
  const where = after === null ? { sql: 'TRUE', params: [] as string[] } : key.after(after);
  const rows = await t.source.query(`SELECT ${key.select()}, ${rowHashExpr(t.hash.source)} AS hash FROM ${qualified(t.sourceTable)} WHERE ${where.sql} ORDER BY ${key.orderBy()} LIMIT ${Math.max(1, Math.trunc(limit))}`, where.params);
  return rows.map((r) => ({ id: key.fromRow(r), hash: str(r, 'hash')! }));
}

/**
 * Delivers the source's rows above the ledger's last span (written since the copy reached there),
 * `limit` at a time, each batch recorded as a new span in the same transaction on the target.
 * Returns the rows delivered, 0 when none is above it.
 */
export async function deliverAbove(m: KeyMigration, ledger: KeyLedger, limit: number): Promise<number> {
  const last = await ledger.last();
  const rows = await rowsAfter(m.tables, last?.hi ?? null, limit);
  if (rows.length === 0) return 0;
  const hashes = new Map(rows.map((r) => [r.id, r.hash]));
  const hi = rows[rows.length - 1]!.id;
  const s = m.state;
  const delivered = await deliverRows(m.tables, rows.map((r) => r.id), async (tx, keys) => {
    await ledger.on(tx).append({ seq: (last?.seq ?? 0) + 1, lo: last?.hi ?? null, hi, rows: String(keys.length), checksum: xorOf(keys.map((k) => hashes.get(k)!)) });
  });
  s.rangesVerified += 1;
  s.nextSpan = (last?.seq ?? 0) + 2;
  s.verifiedUpTo = hi;
  return delivered.length;
}

/**
 * The sweep of a migration copied by such a key, after the cut-over flags, round after round as
 * the id sweep does (see sweeper.ts): wait until every transaction that wrote to the old table has
 * ended, look at every span again (see lookAtSpan, `after`), then deliver what lies above the last
 * span. Done after a round that found nothing, once the source has been quiet for `catchUp.quietSeconds`.
 */
export async function sweepKeys(m: KeyMigration, ledger: KeyLedger): Promise<SweepOutcome> {
  const s = m.state;
  const w = s.sweep;
  const waiting = await settleRound(m, async () => null);
  if (waiting) return waiting;
  const pass = await passOverSpans(m, ledger, 'after', w.probedAfter === null ? null : Number(w.probedAfter), (span, late) => {
    w.probedAfter = String(span.seq);
    w.foundInRound += late;
    w.lateRows = (BigInt(w.lateRows) + BigInt(late)).toString();
  });
  if (pass !== null) return pass;
  for (;;) {
    if (!timeLeft(m)) return { kind: 'budget' };
    const decision = await checkThrottle(m);
    if (decision.throttled) return { kind: 'throttled', reason: decision.reason, waitSeconds: decision.waitSeconds };
    const n = await deliverAbove(m, ledger, s.chunkSpan);
    if (n === 0) break;
    w.extendedInRound += n;
    w.newRows = (BigInt(w.newRows) + BigInt(n)).toString();
    s.quietSince = new Date(m.deps.now()).toISOString();
    await save(m);
    report(m, `copied ${n} rows written to the source above the keys delivered, up to ${s.verifiedUpTo}`);
  }
  return endRound(m, async () => false);
}

/**
 * Looks at the ledger's spans after `cursor` (see lookAtSpan) until the last, the time budget is
 * spent or the throttle says wait (its outcome returned; null once every span was looked at).
 * `moved(span, late, look)` is told each span looked at and the rows it delivered; the state is saved
 * after every batch of spans.
 */
export async function passOverSpans(m: KeyMigration, ledger: KeyLedger, when: 'before' | 'after', cursor: number | null, moved: (span: KeySpan, late: number, look: SpanLook) => void): Promise<CopyOutcome | null> {
  for (let after = cursor; ; ) {
    if (!timeLeft(m)) return { kind: 'budget' };
    const decision = await checkThrottle(m);
    if (decision.throttled) return { kind: 'throttled', reason: decision.reason, waitSeconds: decision.waitSeconds };
    const spans = await ledger.after(after, 100);
    if (spans.length === 0) return null;
    for (const span of spans) {
      const look = await lookAtSpan(m.tables, ledger, span, when);
      const late = look.kind === 'looked' ? look.late : 0;
      if (late > 0) {
        m.state.quietSince = new Date(m.deps.now()).toISOString();
        report(m, `found ${late} rows written late to ${describeKeys(m.tables, spanRange(span))} and copied them`);
      }
      moved(span, late, look);
      after = span.seq;
      if (!timeLeft(m)) break;
    }
    await save(m);
  }
}

/**
 * Deletes one span's rows from the source, only when they are all delivered: in one transaction
 * on the source, the span's rows are read with exclusive locks and compared with the ledger's record;
 * equal, exactly those rows are deleted (a row arriving meanwhile is not one of them). Otherwise
 * nothing is deleted and the span is looked at again (see lookAtSpan, `after`), then tried again,
 * a few times at most (a writer still filling the span holds it up no longer: its rows are deleted
 * on a later round). Returns the rows deleted, and the late rows delivered on the way.
 */
/** How often one span's delete is tried before the trickle-delete moves on (see deleteSpan). */
const DELETE_ATTEMPTS = 4;

export async function deleteSpan(m: KeyMigration, ledger: KeyLedger, span: KeySpan): Promise<{ deleted: number; late: number }> {
  const t = m.tables;
  const key = keyOf(t);
  let late = 0;
  for (let attempt = 0, current: KeySpan | null = span; current && attempt < DELETE_ATTEMPTS; attempt++, current = await ledger.at(span.seq)) {
    const mine = current;
    const deleted = await t.source.transaction(async (tx: SqlConnection) => {
      const rows = await rowHashes(tx, t.sourceTable, key, t.hash.source, spanRange(mine), ' FOR UPDATE');
      if (String(rows.length) !== mine.rows || xorOf(rows.map((r) => r.hash)) !== mine.checksum) return null;
      // Noted first: a run stopped after the delete commits and before the span is recorded empty knows the rows may be gone.
      await ledger.markDeleting(mine.seq);
      let n = 0;
      for (let i = 0; i < rows.length; i += IDS_PER_STATEMENT) {
        const these = key.oneOf(rows.slice(i, i + IDS_PER_STATEMENT).map((r) => r.id));
        n += (await tx.execute(`DELETE FROM ${qualified(t.sourceTable)} WHERE ${these.sql}`, these.params)).affectedRows;
      }
      return n;
    }, { readCommitted: true });
    if (deleted !== null) {
      // The span is empty now, and its record says so after the delete committed: a row arriving there later is late.
      await ledger.update({ seq: mine.seq, rows: '0', checksum: '0' });
      return { deleted, late };
    }
    const look = await lookAtSpan(t, ledger, mine, 'after');
    if (look.kind === 'looked') late += look.late;
  }
  return { deleted: 0, late };
}
