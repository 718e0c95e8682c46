import { quoteIdent } from './identifiers.ts';

/** How a column's value is put into a row's hash, from its type on that side. */
export type ValueKind = 'text' | 'binary' | 'plain';

export interface HashColumn {
  readonly name: string;
  readonly kind: ValueKind;
}

const TEXT_TYPES = new Set(['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext', 'enum', 'set']);
const BINARY_TYPES = new Set([
  'binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob', 'bit',
  'geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon', 'geometrycollection',
]);

/** The kind of a column of this `DATA_TYPE`. */
export function valueKind(dataType: string): ValueKind {
  const t = dataType.toLowerCase();
  return TEXT_TYPES.has(t) ? 'text' : BINARY_TYPES.has(t) ? 'binary' : 'plain';
}

function encoded(c: HashColumn): string {
  const q = quoteIdent(c.name);
  // Text is hashed as utf8mb4 whatever the column's character set, so 'é' in a latin1 target equals 'é' in a utf8mb4 source.
  if (c.kind === 'text') return `QUOTE(CONVERT(${q} USING utf8mb4))`;
  if (c.kind === 'binary') return `QUOTE(HEX(${q}))`;
  return `QUOTE(${q})`;
}

/**
 * The per-row fingerprint used to compare rows on both sides: MD5 over an unambiguous encoding
 * of the row, every column `QUOTE`d (NULL is the bare word NULL, a string is quoted with its
 * quotes escaped) and joined by commas, so ('a,b', 'c') and ('a', 'b,c'), NULL and 'NULL', and
 * '' all differ. Text is compared as characters (in utf8mb4), bytes as hex. Columns are listed in a
 * fixed order (the source's), so both sides hash the same text even when the target declares them
 * in another order.
 */
export function rowHashExpr(columns: readonly HashColumn[]): string {
  if (columns.length === 0) throw new TypeError('rowHashExpr needs at least one column');
  return `MD5(CONCAT_WS(',', ${columns.map(encoded).join(', ')}))`;
}

/**
 * `SELECT COUNT(*)` and the XOR of every row's 64-bit hash (the first half of its MD5) over an id
 * range: two placeholders, lo and hi. XOR makes it independent of row order; a hash that is not
 * affine in the row's bytes means two equal-length edits never cancel out, as they do under CRC32.
 */
export function rangeChecksumSql(qualifiedTable: string, idColumn: string, columns: readonly HashColumn[]): string {
  return (
    `SELECT COUNT(*) AS row_count, COALESCE(BIT_XOR(CAST(CONV(LEFT(${rowHashExpr(columns)}, 16), 16, 10) AS UNSIGNED)), 0) AS checksum ` +
    `FROM ${qualifiedTable} WHERE ${quoteIdent(idColumn)} BETWEEN ? AND ?`
  );
}

/** Per-row hashes of a range, for naming the ids that differ. */
export function rowHashesSql(qualifiedTable: string, idColumn: string, columns: readonly HashColumn[]): string {
  const id = quoteIdent(idColumn);
  return `SELECT ${id} AS id, ${rowHashExpr(columns)} AS hash FROM ${qualifiedTable} WHERE ${id} BETWEEN ? AND ? ORDER BY ${id}`;
}

/** Per-row hashes of the rows with these ids (`count` placeholders). */
export function rowHashesOfIdsSql(qualifiedTable: string, idColumn: string, columns: readonly HashColumn[], count: number): string {
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
