import { differingIds, sameChecksum, type RangeChecksum } from '../checksum.ts';
import { VerificationFailed } from '../errors.ts';
import type { Id } from '../ids.ts';
import { qualified, quoteIdent } from '../identifiers.ts';
import { givingWay, sameServer, type CopyTables } from './copier.ts';
import { idHoles } from './inspector.ts';
import { MAX_HOLES_KEPT, type LedgerEntry } from './ledger.ts';
import { checksumRange, insertRefusing, rowHashesBothSides } from './verifier.ts';

/**
 * table-copy's re-verification of one delivery-ledger span, beside a pending cut-over approval
 * (the loop is lambdas/table-copy/reverify.ts). What a span can show:
 * - equal on both sides: still verified;
 * - the target changed and the source did not (the source still has the checksum both sides agreed
 *   on): the application wrote the new table, which is its own; kept, counted;
 * - rows committed late into the span's holes: the sweep after the cut-over delivers them;
 * - the source changed after it was verified: a writer still updates the old table, and the cut-over
 *   would leave that change behind. When the target is exactly as ferry delivered it (its checksum is
 *   still the agreed one) and both tables share a server, the span is written again from the source
 *   in one transaction, the target's rows locked and checked first ("repaired"); otherwise it is a
 *   difference, and SetCutoverFlags refuses to flip the flags while it lasts.
 */

/** The largest share of a span's verified rows a repair deletes from the new table because they are gone from the old one. */
export const MAX_REPAIR_DELETES_SHARE = 0.05;

/** Whether `id` is in one of the span's holes that may still fill (in a span whose holes were not kept, any id may be). */
function inHoles(id: Id, holes: LedgerEntry['holes']): boolean {
  if (holes === null) return true;
  const v = BigInt(id);
  return holes.some(([lo, hi]) => BigInt(lo) <= v && v <= BigInt(hi));
}

export type Look =
  | { kind: 'equal'; rows: string }
  | { kind: 'late'; rows: string; late: number }
  | { kind: 'application'; rows: string; late: number }
  | { kind: 'repaired'; rows: string; checksum: RangeChecksum; holes: LedgerEntry['holes'] }
  | { kind: 'differs'; detail: string };

function agreed(now: RangeChecksum, span: LedgerEntry): boolean {
  return span.checksum !== null && now.checksum === span.checksum && now.rowCount === span.rows;
}

/** The range checksum of some of a range's rows, from their row hashes: what rangeChecksumSql would give for them alone. */
function checksumOf(rows: readonly { hash: string }[]): RangeChecksum {
  return { rowCount: String(rows.length), checksum: rows.reduce((x, r) => x ^ BigInt(`0x${r.hash.slice(0, 16)}`), 0n).toString() };
}

/**
 * Looks at one span again, and repairs it when that is safe (see above). Every row of the span is
 * compared when the checksums differ, so rows committed late into its holes never hide another change.
 */
export async function lookAgain(t: CopyTables, span: LedgerEntry): Promise<Look> {
  const range = { lo: span.lo, hi: span.hi };
  const [source, target] = await Promise.all([
    checksumRange(t.source, t.sourceTable, t.idColumn, t.hash.source, range),
    checksumRange(t.target, t.targetTable, t.idColumn, t.hash.target, range),
  ]);
  if (sameChecksum(source, target)) return { kind: 'equal', rows: source.rowCount };
  if (agreed(source, span)) return { kind: 'application', rows: source.rowCount, late: 0 };
  const [s, tg] = await rowHashesBothSides(t, range);
  const diffs = differingIds(s, tg, Number.MAX_SAFE_INTEGER);
  const late = new Set(diffs.filter((d) => d.problem === 'missing in target' && inHoles(d.id, span.holes)).map((d) => d.id));
  const others = diffs.filter((d) => !late.has(d.id));
  if (others.length === 0) return { kind: 'late', rows: source.rowCount, late: late.size };
  // Without the rows committed late, is the source still what both sides agreed on? Then the rest is the application's.
  if (agreed(checksumOf(s.filter((r) => !late.has(r.id))), span)) return { kind: 'application', rows: source.rowCount, late: late.size };
  // Rows gone from the old table since they were verified: a repair would delete them from the new one. A few are an
  // application's deletes; many (the old table emptied by mistake, a cleanup run elsewhere) are for a person to judge.
  const gone = others.filter((d) => d.problem === 'extra in target').length;
  if (gone > MAX_REPAIR_DELETES_SHARE * Number(span.rows)) {
    return {
      kind: 'differs',
      detail: `ids ${span.lo}..${span.hi}: ${gone} of the ${span.rows} rows verified are gone from ${t.sourceTable.table} since; ferry does not delete so many from ${t.targetTable.table} by itself (was ${t.sourceTable.table} emptied or cleaned up by something else?): a person must look`,
    };
  }
  if (agreed(target, span) && sameServer(t)) {
    const repaired = await rewriteFromSource(t, span);
    if (repaired) return { kind: 'repaired', rows: repaired.checksum.rowCount, checksum: repaired.checksum, holes: repaired.holes };
  }
  const listed = others.slice(0, 5).map((d) => `${d.id} (${d.problem})`).join(', ');
  const why = span.checksum === null
    ? 'the span was delivered row by row, so which side changed is not known'
    : agreed(target, span) ? `${t.sourceTable.table} changed after it was verified, and the tables are on two servers, so it is not written again` : 'both tables changed after it was verified';
  return { kind: 'differs', detail: `ids ${span.lo}..${span.hi}: ${listed}${others.length > 5 ? ` and ${others.length - 5} more` : ''}: ${why}` };
}

/**
 * Makes a span of the target the source's again, both on one server, in one READ COMMITTED
 * transaction: the target's rows of the span are locked and must still have the checksum both
 * sides agreed on (else the application wrote them, and nothing is changed: null). Rows are
 * updated in place (never deleted and inserted again, which would fire the new table's triggers
 * and cascades), rows gone from the source are deleted, the source's rows read under share locks.
 * Both locking reads are `NOWAIT`: a row an application's transaction holds rolls the repair back
 * at once, to be tried again after a pause (see givingWay), so the repair never waits for the
 * application while holding rows its transaction may want next. Returns the span's checksum and
 * holes as they are now.
 */
async function rewriteFromSource(t: CopyTables, span: LedgerEntry): Promise<{ checksum: RangeChecksum; holes: LedgerEntry['holes'] } | null> {
  const id = quoteIdent(t.idColumn);
  const target = qualified(t.targetTable);
  const source = qualified(t.sourceTable);
  return givingWay(t.target, async (tx) => {
    await tx.query(`SELECT ${id} FROM ${target} WHERE ${id} BETWEEN ? AND ? FOR UPDATE NOWAIT`, [span.lo, span.hi]);
    if (!agreed(await checksumRange(tx, t.targetTable, t.idColumn, t.hash.target, span), span)) return null;
    const updates = t.targetColumns.filter((c) => c.toLowerCase() !== t.idColumn.toLowerCase()).map((c) => `${quoteIdent(c)} = VALUES(${quoteIdent(c)})`);
    await insertRefusing(
      tx,
      `INSERT INTO ${target} (${t.targetColumns.map(quoteIdent).join(', ')}) SELECT ${t.columns.map(quoteIdent).join(', ')} FROM ${source} WHERE ${id} BETWEEN ? AND ? LOCK IN SHARE MODE NOWAIT` +
        (updates.length ? ` ON DUPLICATE KEY UPDATE ${updates.join(', ')}` : ''),
      [span.lo, span.hi],
    );
    await tx.execute(`DELETE FROM ${target} WHERE ${id} BETWEEN ? AND ? AND ${id} NOT IN (SELECT ${id} FROM ${source} WHERE ${id} BETWEEN ? AND ?)`, [span.lo, span.hi, span.lo, span.hi]);
    const after = await checksumRange(tx, t.targetTable, t.idColumn, t.hash.target, span);
    const now = await checksumRange(tx, t.sourceTable, t.idColumn, t.hash.source, span);
    if (!sameChecksum(after, now)) throw new VerificationFailed(`ids ${span.lo}..${span.hi} differ right after being written again from the source; nothing was changed`);
    const holes = await idHoles(tx, t.sourceTable, t.idColumn, span);
    return { checksum: now, holes: holes.length > MAX_HOLES_KEPT ? null : holes };
  }, { readCommitted: true, stopping: t.stopping });
}


