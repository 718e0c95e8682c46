import type { SqlConnection } from '../ports/sql.ts';
import { str } from '../ports/sql.ts';
import type { TableRef } from '../identifiers.ts';

export interface ColumnInfo {
  readonly name: string;
  /** e.g. `int`, `bigint`, `varchar` */
  readonly dataType: string;
  /** e.g. `bigint(20) unsigned` */
  readonly columnType: string;
  readonly nullable: boolean;
  /** Generated columns are computed by the server and never copied. */
  readonly generated: boolean;
}

export interface IntegerRange {
  readonly min: bigint;
  readonly max: bigint;
}

export interface TableInfo {
  readonly ref: TableRef;
  readonly columns: readonly ColumnInfo[];
  readonly primaryKey: readonly string[];
  readonly engine: string | null;
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

/** Columns and primary key of a table, or null when it does not exist. */
export async function inspectTable(conn: SqlConnection, ref: TableRef): Promise<TableInfo | null> {
  const tables = await conn.query(
    'SELECT ENGINE AS engine, TABLE_TYPE AS type FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
    [ref.database, ref.table],
  );
  const table = tables[0];
  if (!table || str(table, 'type') !== 'BASE TABLE') return null;
  const columnRows = await conn.query(
    `SELECT COLUMN_NAME AS name, DATA_TYPE AS data_type, COLUMN_TYPE AS column_type, IS_NULLABLE AS nullable, EXTRA AS extra
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    [ref.database, ref.table],
  );
  const pkRows = await conn.query(
    `SELECT COLUMN_NAME AS name FROM information_schema.KEY_COLUMN_USAGE
      WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION`,
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
    })),
    primaryKey: pkRows.map((r) => str(r, 'name')!),
  };
}

/** The columns that are copied and compared: every stored column of the source, in its order. */
export function copiedColumns(source: TableInfo): string[] {
  return source.columns.filter((c) => !c.generated).map((c) => c.name);
}
