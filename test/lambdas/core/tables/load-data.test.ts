import { describe, expect, it } from 'vitest';
import { fieldBytes, loadCharset, loadDataSql } from '../../../../lambdas/core/tables/load-data.ts';
import type { ColumnInfo } from '../../../../lambdas/core/tables/inspector.ts';

const col = (name: string, dataType: string, charset: string | null = null): ColumnInfo => ({ name, dataType, columnType: dataType, nullable: true, generated: false, charset, collation: null });

describe('LOAD DATA: which tables take it, and how their bytes are read', () => {
  const id = col('id', 'bigint');
  const both = (cols: ColumnInfo[]) => loadCharset(cols, cols, cols.map((c) => c.name), cols.map((c) => c.name));

  it('reads text as UTF-8 converted to each column, and bytes as they are where every text column is UTF-8', () => {
    expect(both([id, col('s', 'varchar', 'latin1')])).toBe('utf8mb4');
    expect(both([id, col('s', 'varchar', 'utf8mb4'), col('b', 'blob')])).toBe('binary');
    expect(both([id, col('s', 'varchar', 'latin1'), col('b', 'blob')])).toBeNull();
    expect(both([id, col('g', 'geometry')])).toBeNull();
  });

  it("MySQL's JSON type beside bytes goes in as INSERTs: MySQL refuses JSON read as CHARACTER SET binary", () => {
    expect(both([id, col('j', 'json')])).toBe('utf8mb4');
    expect(both([id, col('j', 'json'), col('b', 'varbinary')])).toBeNull();
    // MariaDB's JSON is LONGTEXT in utf8mb4: bytes are fine beside it
    expect(both([id, col('j', 'longtext', 'utf8mb4'), col('b', 'varbinary')])).toBe('binary');
  });

  it('writes its separators as hex, so the statement means the same whatever the session does with backslashes', () => {
    const sql = loadDataSql({ database: 'd', table: 't' }, ['id', 'x'], 'binary');
    expect(sql).not.toContain('\\');
    expect(sql).toContain("FIELDS TERMINATED BY X'09' ESCAPED BY X'5C' LINES TERMINATED BY X'0A'");
  });

  it('escapes the field bytes LOAD DATA reads specially, and NULL as \\N', () => {
    expect(Buffer.from(fieldBytes('s', 'a\tb\nc\\d\r\0')).toString()).toBe('a\\tb\\nc\\\\d\\r\\0');
    expect(Buffer.from(fieldBytes('s', null)).toString()).toBe('\\N');
    expect(Buffer.from(fieldBytes('b', Buffer.from([0x5c, 0x09, 0x41])))).toEqual(Buffer.from([0x5c, 0x5c, 0x5c, 0x74, 0x41]));
  });
});
