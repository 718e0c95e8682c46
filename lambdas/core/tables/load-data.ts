import type { SqlRow } from '../ports/sql.ts';
import type { ColumnInfo } from './inspector.ts';
import { qualified, quoteIdent, type TableRef } from '../identifiers.ts';

/**
 * Rows streamed between two servers go in as `LOAD DATA LOCAL INFILE … IGNORE` fed from the
 * source's rows as they arrive: the server's fastest way in, with the same outcome as
 * `INSERT IGNORE` (a row already in the target is kept), and memory bounded by one buffer. Only
 * tables whose every copied column is of a type whose values survive the text format unchanged take
 * this path (see loadCharset); the others are inserted in multi-row INSERTs, and either way
 * verification compares both sides.
 */

/** Types whose values the driver gives as text (numbers, dates, JSON), UTF-8 text or bytes. */
const LOADABLE_TYPES = new Set([
  'tinyint', 'smallint', 'mediumint', 'int', 'integer', 'bigint', 'decimal', 'numeric', 'float', 'double', 'real',
  'char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext', 'json', 'enum', 'set',
  'binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob',
  'date', 'datetime', 'timestamp', 'time', 'year',
]);
/** Text in these goes in as the UTF-8 bytes the driver's string encodes to; bytes go in as they are. */
const BYTE_EXACT_CHARSETS = new Set(['utf8mb4', 'utf8mb3', 'utf8', 'binary']);
const BYTES = new Set(['binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob']);

/** How LOAD DATA reads the rows' bytes: as they are, or as UTF-8 converted to each column's character set. */
export type LoadCharset = 'binary' | 'utf8mb4';

/**
 * Whether every copied column, on both sides, can take the LOAD DATA path, and how its bytes are
 * read: a table with binary columns only as bytes (so its text must be UTF-8 on both sides), one
 * without them as UTF-8 converted to each column's character set, as an INSERT's values are.
 * Null: the rows go in as INSERTs.
 */
export function loadCharset(source: readonly ColumnInfo[], target: readonly ColumnInfo[], columns: readonly string[], targetColumns: readonly string[]): LoadCharset | null {
  const pairs = columns.map((name, i) => [source.find((c) => c.name === name), target.find((c) => c.name === targetColumns[i])] as const);
  const sides = pairs.flat();
  if (sides.some((c) => c === undefined || !LOADABLE_TYPES.has(c.dataType.toLowerCase()))) return null;
  if (!sides.some((c) => BYTES.has(c!.dataType.toLowerCase()))) return 'utf8mb4';
  // MySQL's JSON type has no character set to read it in, and refuses CHARACTER SET binary.
  if (sides.some((c) => c!.dataType.toLowerCase() === 'json')) return null;
  return sides.every((c) => c!.charset === null || BYTE_EXACT_CHARSETS.has(c!.charset.toLowerCase())) ? 'binary' : null;
}

/**
 * The statement: tab-separated fields, backslash escapes, `\N` for NULL. The separators are written
 * as hex, which no sql_mode reads differently.
 */
export function loadDataSql(table: TableRef, columns: readonly string[], charset: LoadCharset): string {
  return `LOAD DATA LOCAL INFILE 'ferry-rows' IGNORE INTO TABLE ${qualified(table)} CHARACTER SET ${charset} ` +
    `FIELDS TERMINATED BY X'09' ESCAPED BY X'5C' LINES TERMINATED BY X'0A' (${columns.map(quoteIdent).join(', ')})`;
}

const TEXT_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r', '\0': '\\0' };
const BYTE_ESCAPES = new Map<number, number>([[0x5c, 0x5c], [0x09, 0x74], [0x0a, 0x6e], [0x0d, 0x72], [0x00, 0x30]]);

function escapeBytes(bytes: Uint8Array): Uint8Array {
  let specials = 0;
  for (const b of bytes) if (BYTE_ESCAPES.has(b)) specials++;
  if (specials === 0) return bytes;
  const out = new Uint8Array(bytes.length + specials);
  let j = 0;
  for (const b of bytes) {
    const e = BYTE_ESCAPES.get(b);
    if (e === undefined) out[j++] = b;
    else {
      out[j++] = 0x5c;
      out[j++] = e;
    }
  }
  return out;
}

const encoder = new TextEncoder();
const TAB = encoder.encode('\t');
const NEWLINE = encoder.encode('\n');
const NULL = encoder.encode('\\N');

/** One field as LOAD DATA reads it. */
export function fieldBytes(column: string, v: unknown): Uint8Array {
  if (v === null || v === undefined) return NULL;
  if (typeof v === 'string') return encoder.encode(v.replace(/[\\\t\n\r\0]/g, (ch) => TEXT_ESCAPES[ch]!));
  if (v instanceof Uint8Array) return escapeBytes(v);
  if (typeof v === 'number' || typeof v === 'bigint') return encoder.encode(String(v));
  throw new Error(`column ${column}: a value of type ${typeof v} cannot be loaded`);
}

/** The rows as LOAD DATA's input, in buffers of about `bufferBytes`. */
export async function* loadDataLines(rows: AsyncIterable<SqlRow>, columns: readonly string[], bufferBytes = 256 * 1024): AsyncGenerator<Uint8Array> {
  let parts: Uint8Array[] = [];
  let size = 0;
  const flush = () => {
    const out = new Uint8Array(size);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    parts = [];
    size = 0;
    return out;
  };
  for await (const row of rows) {
    columns.forEach((c, i) => {
      if (i > 0) parts.push(TAB);
      const f = fieldBytes(c, row[c]);
      parts.push(f);
      size += f.length + (i > 0 ? 1 : 0);
    });
    parts.push(NEWLINE);
    size += 1;
    if (size >= bufferBytes) yield flush();
  }
  if (size > 0) yield flush();
}
