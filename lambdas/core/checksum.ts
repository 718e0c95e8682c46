import { quoteIdent } from './identifiers.ts';

/**
 * The per-row fingerprint used to compare rows on both sides: MD5 over an unambiguous encoding
 * of the row, every column `QUOTE`d (NULL is the bare word NULL, a string is quoted with its
 * quotes escaped) and joined by commas, so ('a,b', 'c') and ('a', 'b,c'), NULL and 'NULL', and
 * '' all differ. Columns are listed in a fixed order (the source's), so both sides hash the same
 * text even when the target declares them in another order.
 */
export function rowHashExpr(columns: readonly string[]): string {
  if (columns.length === 0) throw new TypeError('rowHashExpr needs at least one column');
  return `MD5(CONCAT_WS(',', ${columns.map((c) => `QUOTE(${quoteIdent(c)})`).join(', ')}))`;
}

/**
 * `SELECT COUNT(*)` and the XOR of every row's 64-bit hash (the first half of its MD5) over an id
 * range: two placeholders, lo and hi. XOR makes it independent of row order; a hash that is not
 * affine in the row's bytes means two equal-length edits never cancel out, as they do under CRC32.
 */
export function rangeChecksumSql(qualifiedTable: string, idColumn: string, columns: readonly string[]): string {
  return (
    `SELECT COUNT(*) AS row_count, COALESCE(BIT_XOR(CAST(CONV(LEFT(${rowHashExpr(columns)}, 16), 16, 10) AS UNSIGNED)), 0) AS checksum ` +
    `FROM ${qualifiedTable} WHERE ${quoteIdent(idColumn)} BETWEEN ? AND ?`
  );
}

/** Per-row hashes of a range, for naming the ids that differ. */
export function rowHashesSql(qualifiedTable: string, idColumn: string, columns: readonly string[]): string {
  const id = quoteIdent(idColumn);
  return `SELECT ${id} AS id, ${rowHashExpr(columns)} AS hash FROM ${qualifiedTable} WHERE ${id} BETWEEN ? AND ? ORDER BY ${id}`;
}

/** Per-row hashes of the rows with these ids (`count` placeholders). */
export function rowHashesOfIdsSql(qualifiedTable: string, idColumn: string, columns: readonly string[], count: number): string {
  const id = quoteIdent(idColumn);
  return `SELECT ${id} AS id, ${rowHashExpr(columns)} AS hash FROM ${qualifiedTable} WHERE ${id} IN (${Array(count).fill('?').join(', ')}) ORDER BY ${id}`;
}

export interface RangeChecksum {
  readonly rowCount: string;
  readonly checksum: string;
}

export function sameChecksum(a: RangeChecksum, b: RangeChecksum): boolean {
  return a.rowCount === b.rowCount && a.checksum === b.checksum;
}

/**
 * Ids whose row differs, is missing on one side, or is extra on the other,
 * given per-row hashes sorted by id. At most `limit` are returned.
 */
export function differingIds(
  source: readonly { id: string; hash: string }[],
  target: readonly { id: string; hash: string }[],
  limit = 10,
): { id: string; problem: 'missing in target' | 'differs' | 'extra in target' }[] {
  const targetById = new Map(target.map((r) => [r.id, r.hash]));
  const sourceIds = new Set(source.map((r) => r.id));
  const out: { id: string; problem: 'missing in target' | 'differs' | 'extra in target' }[] = [];
  for (const row of source) {
    if (out.length >= limit) return out;
    const other = targetById.get(row.id);
    if (other === undefined) out.push({ id: row.id, problem: 'missing in target' });
    else if (other !== row.hash) out.push({ id: row.id, problem: 'differs' });
  }
  for (const row of target) {
    if (out.length >= limit) return out;
    if (!sourceIds.has(row.id)) out.push({ id: row.id, problem: 'extra in target' });
  }
  return out;
}
