import { quoteIdent } from './identifiers.ts';

/**
 * The per-row fingerprint used to compare a range on both sides:
 * `CRC32(CONCAT_WS('#', c1, …, cn, null-bitmap))`.
 *
 * CONCAT_WS skips NULLs, so ('a', NULL) and (NULL, 'a') would collide without the bitmap of
 * which columns are NULL. Columns are listed in a fixed order (the source's), so both sides
 * hash the same text even when the target declares them in another order.
 */
export function rowHashExpr(columns: readonly string[]): string {
  if (columns.length === 0) throw new TypeError('rowHashExpr needs at least one column');
  const quoted = columns.map(quoteIdent);
  const bitmap = `CONCAT(${quoted.map((c) => `ISNULL(${c})`).join(', ')})`;
  return `CRC32(CONCAT_WS('#', ${quoted.join(', ')}, ${bitmap}))`;
}

/** `SELECT COUNT(*), BIT_XOR(hash)` over an id range: two placeholders, lo and hi. */
export function rangeChecksumSql(qualifiedTable: string, idColumn: string, columns: readonly string[]): string {
  return (
    `SELECT COUNT(*) AS row_count, COALESCE(BIT_XOR(${rowHashExpr(columns)}), 0) AS checksum ` +
    `FROM ${qualifiedTable} WHERE ${quoteIdent(idColumn)} BETWEEN ? AND ?`
  );
}

/** Per-row hashes of a range, for naming the ids that differ. */
export function rowHashesSql(qualifiedTable: string, idColumn: string, columns: readonly string[]): string {
  const id = quoteIdent(idColumn);
  return `SELECT ${id} AS id, ${rowHashExpr(columns)} AS hash FROM ${qualifiedTable} WHERE ${id} BETWEEN ? AND ? ORDER BY ${id}`;
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
