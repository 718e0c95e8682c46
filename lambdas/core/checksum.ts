import { quoteIdent } from './identifiers.ts';

/** A column as it goes into a row's hash on one side. */
export interface HashColumn {
  readonly name: string;
  /** Text in a character set other than UTF-8: hashed as its utf8mb4 bytes, so 'é' in latin1 equals 'é' in utf8mb4. */
  readonly toUtf8: boolean;
  /**
   * FLOAT: the server prints it with six significant digits (16777217 and 16777218 both as
   * 1.67772e7), so it is read and hashed as the DOUBLE it converts to exactly.
   */
  readonly float?: boolean;
  /**
   * A number, date or time on both sides: its text never holds a comma, is never empty and is
   * never `N`, so it goes into the row's text as it is, without its length.
   */
  readonly plain?: boolean;
  /**
   * The row hash of a migration whose checkpoint was written before rows were hashed with SHA-1
   * (MD5, every value with its length): a migration keeps the hash its ledger was recorded with.
   */
  readonly md5?: boolean;
}

/** A column's value as text that keeps all of it: a FLOAT as its exact DOUBLE, anything else as it is. */
export function wholeValue(c: HashColumn): string {
  return c.float ? `CAST(${quoteIdent(c.name)} AS DOUBLE)` : quoteIdent(c.name);
}

const UTF8 = new Set(['utf8mb4', 'utf8mb3', 'utf8']);

/** Whether a column of this character set (null for numbers, dates and bytes) is converted before hashing. */
export function needsUtf8(charset: string | null): boolean {
  return charset !== null && charset !== 'binary' && !UTF8.has(charset.toLowerCase());
}

/** Types whose values print as a number, a date or a time: no comma, never empty. */
const PLAIN_TYPES = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'integer', 'bigint', 'decimal', 'numeric', 'float', 'double', 'real', 'date', 'datetime', 'timestamp', 'time', 'year']);

/** Whether a column of this data type may go into a row's text without its length (see HashColumn.plain), when the other side's may too. */
export function plainType(dataType: string | undefined): boolean {
  return dataType !== undefined && PLAIN_TYPES.has(dataType.toLowerCase());
}

/** The form of row hash a migration's checkpoint records: `sha1` since it was introduced; a checkpoint without one was written with MD5. */
export type RowHashForm = 'sha1' | 'md5';
export const ROW_HASH: RowHashForm = 'sha1';

/**
 * The per-row fingerprint used to compare rows on both sides: SHA-1 over an unambiguous encoding
 * of the row, every column as `<bytes>:<value>` (NULL as `N`), or, for a number, date or time on
 * both sides, the value as it prints (NULL as `N`), joined by commas, so ('a,b', 'c') and ('a',
 * 'b,c'), NULL and 'N', and '' all differ. Values are compared as their text (a number or a date as
 * MySQL prints it, text as UTF-8, bytes as they are), so a type the ALTER changed still compares
 * equal when its values print the same. Columns are listed in a fixed order (the source's), so
 * both sides hash the same text even when the target declares them in another order.
 */
export function rowHashExpr(columns: readonly HashColumn[]): string {
  if (columns.length === 0) throw new TypeError('rowHashExpr needs at least one column');
  const md5 = columns.some((c) => c.md5);
  const encoded = columns.map((c) => {
    const v = c.toUtf8 ? `CONVERT(${quoteIdent(c.name)} USING utf8mb4)` : wholeValue(c);
    return c.plain && !md5 ? `IFNULL(${v}, 'N')` : `IFNULL(CONCAT(LENGTH(${v}), ':', ${v}), 'N')`;
  });
  return `${md5 ? 'MD5' : 'SHA1'}(CONCAT_WS(',', ${encoded.join(', ')}))`;
}

/**
 * `SELECT COUNT(*)` and the XOR of every row's 64-bit hash (the first 64 bits of its SHA-1) over an id
 * range: two placeholders, lo and hi. XOR makes it independent of row order; a hash that is not
 * affine in the row's bytes means two equal-length edits never cancel out, as they do under CRC32.
 */
export function rangeChecksumSql(qualifiedTable: string, idColumn: string, columns: readonly HashColumn[]): string {
  return `SELECT ${checksumSelect(columns)} FROM ${qualifiedTable} WHERE ${quoteIdent(idColumn)} BETWEEN ? AND ?`;
}

/** The select list of a range checksum (see rangeChecksumSql): `row_count` and `checksum`. */
export function checksumSelect(columns: readonly HashColumn[]): string {
  return `COUNT(*) AS row_count, COALESCE(BIT_XOR(CAST(CONV(LEFT(${rowHashExpr(columns)}, 16), 16, 10) AS UNSIGNED)), 0) AS checksum`;
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
