import type { SqlConnection } from '../ports/sql.ts';
import { scalar, str } from '../ports/sql.ts';
import { needsUtf8, plainType, ROW_HASH, type HashColumn, type RowHashForm } from '../checksum.ts';
import { ResultTooLarge } from '../errors.ts';
import { holesFromGaps, type Hole } from '../holes.ts';
import { addId, compareIds, fromBig, toBig, type IdRange } from '../ids.ts';
import { isPlainName, qualified, quoteIdent, type TableRef } from '../identifiers.ts';
import { keyKind, KeyShape, type KeyColumn } from '../keys.ts';

export interface ColumnInfo {
  readonly name: string;
  /** e.g. `int`, `bigint`, `varchar` */
  readonly dataType: string;
  /** e.g. `bigint(20) unsigned` */
  readonly columnType: string;
  readonly nullable: boolean;
  /** Generated columns are computed by the server and never copied. */
  readonly generated: boolean;
  /** The character set of a text column, null for other types. */
  readonly charset: string | null;
  /** Its collation, null for other types. */
  readonly collation: string | null;
}

export interface IntegerRange {
  readonly min: bigint;
  readonly max: bigint;
}

/** A unique index, as SHOW INDEX lists it: its parts (see UniqueKey) and their columns. */
export interface UniqueIndex extends UniqueKey {
  readonly columns: readonly string[];
  /** Every column NOT NULL and indexed whole (no prefix): the index names one row per value. */
  readonly whole: boolean;
  /**
   * A B-tree, which keeps its entries in order: not the HASH index MariaDB enforces a unique key on
   * a long column with, which nothing can be read in order from (a sort in its place compares only
   * the first max_sort_length bytes of each value).
   */
  readonly ordered: boolean;
  /** Why it is not `ordered`, as an operator is told it. */
  readonly unordered?: string;
}

export interface TableInfo {
  readonly ref: TableRef;
  readonly columns: readonly ColumnInfo[];
  /** Its unique indexes, the primary key first, in the server's order (the first `whole` one is the index InnoDB stores the rows in). */
  readonly uniqueIndexes: readonly UniqueIndex[];
  readonly engine: string | null;
}

/**
 * The key a migration copies, verifies and deletes by, and the source table's unique index on it:
 * `column` alone (an integer; the only kind a checkpoint written before `columns` knew), or `columns`.
 */
export interface CopyKey {
  /** The key's first column. */
  readonly column: string;
  readonly index: string;
  /** Every column of the key, in the index's order, when it is not one integer column. */
  readonly columns?: readonly string[];
  /** How many of `columns` the source's index `index` has, when fewer: they alone order the rows (see KeyShape.orderedBy). */
  readonly orderedBy?: number;
}

/** The columns of a copy key. */
export function copyKeyColumns(key: CopyKey): readonly string[] {
  return key.columns ?? [key.column];
}

/**
 * The table's unique indexes that ferry can copy by, best first: those on one integer column (see
 * integerKeys: their ranges split by arithmetic), then every other whole unique index whose columns
 * are all of types ferry reads keys of (see keyKind), in the server's order.
 */
export function copyKeys(info: TableInfo): CopyKey[] {
  const integers = integerKeys(info);
  const others = info.uniqueIndexes.flatMap((k) => {
    if (!k.whole || !k.ordered || integers.some((i) => i.index === k.name) || !(keyShapeOf(info, k.columns) instanceof KeyShape)) return [];
    return [{ column: k.columns[0]!, index: k.name, columns: [...k.columns] }];
  });
  return [...integers, ...others];
}

/** The shape of a copy key in this table (its columns' types); throws when the table cannot hold it. */
export function copyKeyShape(info: TableInfo, key: CopyKey): KeyShape {
  const shape = keyShapeOf(info, copyKeyColumns(key));
  if (!(shape instanceof KeyShape)) throw new TypeError(shape.unsupported);
  return key.orderedBy ? new KeyShape(shape.columns, key.orderedBy) : shape;
}

/** The table's unique indexes that ferry can copy by: one integer column, NOT NULL, indexed whole; its row key first. */
export function integerKeys(info: TableInfo): CopyKey[] {
  return info.uniqueIndexes.flatMap((k) => {
    const column = info.columns.find((c) => k.columns.length === 1 && c.name.toLowerCase() === k.columns[0]!.toLowerCase());
    return k.whole && k.ordered && column && isPlainName(column.name) && integerRange(column) ? [{ column: column.name, index: k.name }] : [];
  });
}

/** How the table's unique keys are named to an operator. */
export function describeUniqueKeys(info: TableInfo): string {
  return info.uniqueIndexes.length ? `its unique keys: ${info.uniqueIndexes.map((k) => `${k.name} (${k.columns.join(', ')})${k.unordered ? ` (${k.unordered})` : ''}`).join(', ')}` : 'it has no unique key';
}

/** The name of a whole unique index of the table on exactly that one column, or null. */
export function uniqueIndexOn(info: TableInfo, column: string): string | null {
  return info.uniqueIndexes.find((k) => k.whole && k.columns.length === 1 && k.columns[0]!.toLowerCase() === column.toLowerCase())?.name ?? null;
}

/** The name of a whole unique index of the table on exactly these columns (in any order), or null. */
export function uniqueIndexOnAll(info: TableInfo, columns: readonly string[]): string | null {
  const want = columns.map((c) => c.toLowerCase()).sort().join('\0');
  return info.uniqueIndexes.find((k) => k.whole && k.columns.map((c) => c.toLowerCase()).sort().join('\0') === want)?.name ?? null;
}

/** The shape of a key on these columns of the table, or why it cannot be one (a column type ferry does not read keys of, or a column it lacks). */
export function keyShapeOf(info: TableInfo, columns: readonly string[]): KeyShape | { readonly unsupported: string } {
  const parts: KeyColumn[] = [];
  for (const name of columns) {
    const column = info.columns.find((c) => c.name.toLowerCase() === name.toLowerCase());
    if (!column) return { unsupported: `${info.ref.table} has no column ${name}` };
    const kind = keyKind(column.dataType);
    if (!kind) return { unsupported: `key column ${column.name} is ${column.columnType}` };
    if (!isPlainName(column.name)) return { unsupported: `key column ${JSON.stringify(column.name)} has a name ferry does not write into SQL` };
    parts.push({ name: column.name, kind });
  }
  return new KeyShape(parts);
}

const INTEGER_BITS: Record<string, number> = { tinyint: 8, smallint: 16, mediumint: 24, int: 32, integer: 32, bigint: 64 };

/** The values an integer column type can hold, or null when the type is not an integer. */
export function integerRange(column: Pick<ColumnInfo, 'dataType' | 'columnType'>): IntegerRange | null {
  const bits = INTEGER_BITS[column.dataType.toLowerCase()];
  if (bits === undefined) return null;
  if (/\bunsigned\b/i.test(column.columnType)) return { min: 0n, max: (1n << BigInt(bits)) - 1n };
  return { min: -(1n << BigInt(bits - 1)), max: (1n << BigInt(bits - 1)) - 1n };
}

export async function databaseExists(conn: SqlConnection, database: string): Promise<boolean> {
  const rows = await conn.query('SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [database]);
  return rows.length > 0;
}

/** Whether the database holds a table (or view) of that name: one dictionary lookup, nothing written. */
export async function tableExists(conn: SqlConnection, database: string, table: string): Promise<boolean> {
  const rows = await conn.query('SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [database, table]);
  return rows.length > 0;
}

/** Columns and primary key of a table, or null when it does not exist. */
export async function inspectTable(conn: SqlConnection, ref: TableRef): Promise<TableInfo | null> {
  const tables = await conn.query(
    'SELECT ENGINE AS engine, TABLE_TYPE AS type FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
    [ref.database, ref.table],
  );
  const table = tables[0];
  if (!table || str(table, 'type') !== 'BASE TABLE') return null;
  const uniqueIndexes = await uniqueIndexesOf(conn, ref);
  const columnRows = await conn.query(
    `SELECT COLUMN_NAME AS name, DATA_TYPE AS data_type, COLUMN_TYPE AS column_type, IS_NULLABLE AS nullable, EXTRA AS extra, CHARACTER_SET_NAME AS charset, COLLATION_NAME AS collation
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    [ref.database, ref.table],
  );
  return {
    ref,
    engine: str(table, 'engine'),
    columns: columnRows.map((r) => ({
      name: str(r, 'name')!,
      dataType: str(r, 'data_type')!,
      columnType: str(r, 'column_type')!,
      nullable: str(r, 'nullable') === 'YES',
      generated: /GENERATED/i.test(str(r, 'extra') ?? ''),
      charset: str(r, 'charset'),
      collation: str(r, 'collation'),
    })),
    uniqueIndexes,
  };
}

/**
 * The table's unique indexes. SHOW INDEX lists them in the server's own order: the primary key
 * first, then unique keys without nullable columns, of which InnoDB takes the first as the
 * clustered index when there is no primary key.
 */
async function uniqueIndexesOf(conn: SqlConnection, ref: TableRef): Promise<UniqueIndex[]> {
  const rows = await conn.query(`SHOW INDEX FROM ${qualified(ref)}`);
  const keys = new Map<string, { name: string; columns: string[]; parts: { column: string; prefix: number | null }[]; whole: boolean; ordered: boolean; unordered?: string }>();
  for (const r of rows) {
    if (str(r, 'Non_unique') !== '0') continue;
    const name = str(r, 'Key_name')!;
    const k = keys.get(name) ?? { name, columns: [], parts: [], whole: true, ordered: true };
    // a HASH index keeps no order; a descending part, another order than the ascending one ferry reads keys in
    const unordered = (str(r, 'Index_type') ?? 'BTREE').toUpperCase() !== 'BTREE' ? 'a hash index' : str(r, 'Collation') === 'D' ? `${str(r, 'Column_name')} descending` : null;
    if (unordered && k.ordered) Object.assign(k, { ordered: false, unordered });
    const sub = str(r, 'Sub_part');
    k.columns.push(str(r, 'Column_name')!);
    k.parts.push({ column: str(r, 'Column_name')!, prefix: sub === null ? null : Number(sub) });
    k.whole &&= str(r, 'Null') !== 'YES' && sub === null;
    keys.set(name, k);
  }
  return [...keys.values()];
}

/**
 * How the named columns of this table go into a row's hash (a column it lacks, as it is). With
 * `other` (the other side's table and its names for the same columns, in the same order), a column
 * is plain only when it is plain on both sides; without, the table is compared with itself.
 */
export function hashColumns(info: TableInfo | null, names: readonly string[], other?: { info: TableInfo | null; names: readonly string[] }, form: RowHashForm = ROW_HASH): HashColumn[] {
  const typeOf = (t: TableInfo | null, name: string | undefined) => name === undefined ? undefined : t?.columns.find((x) => x.name.toLowerCase() === name.toLowerCase());
  return names.map((name, i) => {
    const c = typeOf(info, name);
    const o = other ? typeOf(other.info, other.names[i]) : c;
    return {
      name,
      toUtf8: needsUtf8(c?.charset ?? null),
      float: c?.dataType.toLowerCase() === 'float',
      plain: plainType(c?.dataType) && plainType(o?.dataType),
      ...(form === 'md5' ? { md5: true } : {}),
    };
  });
}

/** How both sides' columns (the same columns under each side's names, in the same order) go into a row's hash. */
export function pairedHashColumns(
  source: { info: TableInfo | null; names: readonly string[] },
  target: { info: TableInfo | null; names: readonly string[] },
  form: RowHashForm = ROW_HASH,
): { source: HashColumn[]; target: HashColumn[] } {
  return { source: hashColumns(source.info, source.names, target, form), target: hashColumns(target.info, target.names, source, form) };
}

/** The columns that are copied and compared: every stored column of the source, in its order. */
export function copiedColumns(source: TableInfo): string[] {
  return source.columns.filter((c) => !c.generated).map((c) => c.name);
}

/** Whether the table holds any row at all (one index probe, not a count). */
export async function hasAnyRow(conn: SqlConnection, ref: TableRef): Promise<boolean> {
  return (await conn.query(`SELECT 1 AS any_row FROM ${qualified(ref)} LIMIT 1`)).length > 0;
}

/** The server's row estimate (`information_schema.TABLES.TABLE_ROWS`), as a decimal string. */
export async function estimatedRows(conn: SqlConnection, ref: TableRef): Promise<string> {
  return (await scalar(conn, 'SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [ref.database, ref.table])) ?? '0';
}

/** The table's next AUTO_INCREMENT value, or null when it has no AUTO_INCREMENT column. */
export async function autoIncrementOf(conn: SqlConnection, ref: TableRef): Promise<string | null> {
  return scalar(conn, 'SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [ref.database, ref.table]);
}

/** The name of the table's AUTO_INCREMENT column, or null when it has none. */
export async function autoIncrementColumn(conn: SqlConnection, ref: TableRef): Promise<string | null> {
  return scalar(conn, "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND EXTRA LIKE '%auto_increment%' LIMIT 1", [ref.database, ref.table]);
}

/** The table's AUTO_INCREMENT as it is now (MySQL 8 caches information_schema's statistics unless told not to). */
export async function liveAutoIncrementOf(conn: SqlConnection, ref: TableRef): Promise<string | null> {
  if (conn.sessions) await conn.execute('SET SESSION information_schema_stats_expiry = 0').catch(() => undefined);
  return autoIncrementOf(conn, ref);
}

/** Data and index bytes of the table, as the server reports them. */
export async function tableBytes(conn: SqlConnection, ref: TableRef): Promise<string | null> {
  return scalar(conn, 'SELECT DATA_LENGTH + INDEX_LENGTH FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [ref.database, ref.table]);
}

/** Free bytes on the data directory's disk, where the server reports it (MariaDB's DISKS plugin), else null. */
export async function diskFreeBytes(conn: SqlConnection): Promise<string | null> {
  try {
    return await scalar(conn, 'SELECT MIN(Available) * 1024 FROM information_schema.DISKS');
  } catch {
    return null;
  }
}

export interface ForeignKeyRef {
  readonly name: string;
  /** The table that holds the constraint. */
  readonly table: TableRef;
  readonly column: string;
}

/** Foreign keys of other tables that point at this one. */
export async function foreignKeysPointingAt(conn: SqlConnection, ref: TableRef): Promise<ForeignKeyRef[]> {
  const rows = await conn.query(
    `SELECT CONSTRAINT_SCHEMA AS db, TABLE_NAME AS tbl, CONSTRAINT_NAME AS name, COLUMN_NAME AS col
       FROM information_schema.KEY_COLUMN_USAGE WHERE REFERENCED_TABLE_SCHEMA = ? AND REFERENCED_TABLE_NAME = ?
      ORDER BY CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME`,
    [ref.database, ref.table],
  );
  return rows.map((r) => ({ name: str(r, 'name')!, table: { database: str(r, 'db')!, table: str(r, 'tbl')! }, column: str(r, 'col')! }));
}

/** Triggers defined on the table, as `name (timing event)`. */
export async function triggersOn(conn: SqlConnection, ref: TableRef): Promise<string[]> {
  const rows = await conn.query(
    'SELECT TRIGGER_NAME AS name, ACTION_TIMING AS timing, EVENT_MANIPULATION AS event FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?',
    [ref.database, ref.table],
  );
  return rows.map((r) => `${str(r, 'name')} (${str(r, 'timing')} ${str(r, 'event')})`);
}

/**
 * The ids of `[lo, hi]` that hold no row now, as holes: one pass over the primary key that returns
 * only the rows that follow a gap. A result too big for the connection is asked for in halves.
 */
export async function idHoles(conn: SqlConnection, ref: TableRef, idColumn: string, range: IdRange): Promise<Hole[]> {
  const id = quoteIdent(idColumn);
  try {
    const gaps = await conn.query(
      `SELECT prev_id AS prev, id FROM (SELECT ${id} AS id, LAG(${id}) OVER (ORDER BY ${id}) AS prev_id FROM ${qualified(ref)} WHERE ${id} BETWEEN ? AND ?) AS ids
        WHERE prev_id IS NULL OR id > prev_id + 1`,
      [range.lo, range.hi],
    );
    const last = await scalar(conn, `SELECT MAX(${id}) FROM ${qualified(ref)} WHERE ${id} BETWEEN ? AND ?`, [range.lo, range.hi]);
    return holesFromGaps(range.lo, range.hi, gaps.map((g) => ({ prev: str(g, 'prev'), id: str(g, 'id')! })), last);
  } catch (err) {
    if (!(err instanceof ResultTooLarge) || compareIds(range.lo, range.hi) === 0) throw err;
    const mid = fromBig((toBig(range.lo) + toBig(range.hi)) / 2n);
    return [...(await idHoles(conn, ref, idColumn, { lo: range.lo, hi: mid })), ...(await idHoles(conn, ref, idColumn, { lo: addId(mid, 1), hi: range.hi }))].reduce<Hole[]>(
      (all, h) => {
        const prev = all[all.length - 1];
        // the two halves' holes touch at mid: join them
        if (prev && compareIds(addId(prev[1], 1), h[0]) === 0) all[all.length - 1] = [prev[0], h[1]];
        else all.push(h);
        return all;
      },
      [],
    );
  }
}

/** A unique key: its name and its parts, each a column and the length of its prefix (null: the whole value). */
export interface UniqueKey {
  readonly name: string;
  readonly parts: readonly { readonly column: string; readonly prefix: number | null }[];
}


export interface ForeignKeyDefinition {
  readonly name: string;
  /** Everything after the name: `FOREIGN KEY (…) REFERENCES … [ON DELETE …] [ON UPDATE …]`. */
  readonly definition: string;
}

/** The table's own foreign keys (it is the child), as SHOW CREATE TABLE states them. */
export async function foreignKeysOf(conn: SqlConnection, ref: TableRef): Promise<ForeignKeyDefinition[]> {
  const rows = await conn.query(`SHOW CREATE TABLE ${qualified(ref)}`);
  const text = str(rows[0] ?? {}, 'Create Table') ?? '';
  return text.split('\n').flatMap((line) => {
    const m = /^\s*CONSTRAINT `((?:[^`]|``)+)` (FOREIGN KEY .*?),?$/.exec(line);
    return m ? [{ name: m[1]!.replace(/``/g, '`'), definition: m[2]! }] : [];
  });
}

/** Constraint names in use in a database (they are unique per database), by lower-cased name. */
export async function constraintNames(conn: SqlConnection, database: string): Promise<Set<string>> {
  const rows = await conn.query('SELECT CONSTRAINT_NAME AS name FROM information_schema.TABLE_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ?', [database]);
  return new Set(rows.map((r) => str(r, 'name')!.toLowerCase()));
}
