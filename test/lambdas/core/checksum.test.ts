import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { differingIds, needsUtf8, rangeChecksumSql, rowHashExpr, sameChecksum, type HashColumn } from '../../../lambdas/core/checksum.ts';
import { pairedHashColumns, type TableInfo } from '../../../lambdas/core/tables/inspector.ts';

const utf8 = (...names: string[]): HashColumn[] => names.map((name) => ({ name, toUtf8: false }));
const numbers = (...names: string[]): HashColumn[] => names.map((name) => ({ name, toUtf8: false, plain: true }));
const latin1 = (...names: string[]): HashColumn[] => names.map((name) => ({ name, toUtf8: true }));
import { admin, makeDatabases } from '../../helpers/db.ts';

describe('checksum SQL', () => {
  it('hashes the columns in order with SHA-1, each one length-prefixed (text not in UTF-8 converted first), every identifier quoted', () => {
    expect(rowHashExpr([...utf8('id'), ...latin1('state')])).toBe(
      "SHA1(CONCAT_WS(',', IFNULL(CONCAT(LENGTH(`id`), ':', `id`), 'N'), IFNULL(CONCAT(LENGTH(CONVERT(`state` USING utf8mb4)), ':', CONVERT(`state` USING utf8mb4)), 'N')))",
    );
    expect(rangeChecksumSql('`d`.`t`', 'id', utf8('id'))).toBe(
      "SELECT COUNT(*) AS row_count, COALESCE(BIT_XOR(CAST(CONV(LEFT(SHA1(CONCAT_WS(',', IFNULL(CONCAT(LENGTH(`id`), ':', `id`), 'N'))), 16), 16, 10) AS UNSIGNED)), 0) AS checksum FROM `d`.`t` WHERE `id` BETWEEN ? AND ?",
    );
  });

  it('puts a number, date or time on both sides in as it prints, and keeps MD5 with every length for a migration recorded with it', () => {
    expect(rowHashExpr([...numbers('id'), ...utf8('state')])).toBe(
      "SHA1(CONCAT_WS(',', IFNULL(`id`, 'N'), IFNULL(CONCAT(LENGTH(`state`), ':', `state`), 'N')))",
    );
    const column = (name: string, dataType: string) => ({ name, dataType, columnType: dataType, nullable: true, generated: false, charset: null, collation: null });
    const table = (...columns: ReturnType<typeof column>[]): TableInfo => ({ ref: { database: 'd', table: 't' }, columns, uniqueIndexes: [{ name: 'PRIMARY', columns: ['id'], parts: [{ column: 'id', prefix: null }], whole: true, ordered: true }], engine: 'InnoDB' });
    // an int the ALTER made a varchar is length-prefixed on both sides, so equal values still hash alike
    const source = { info: table(column('id', 'int'), column('n', 'int'), column('at', 'datetime')), names: ['id', 'n', 'at'] };
    const target = { info: table(column('id', 'bigint'), column('n', 'varchar'), column('at', 'datetime')), names: ['id', 'n', 'at'] };
    const both = pairedHashColumns(source, target);
    expect(both.source.map((c) => c.plain)).toEqual([true, false, true]);
    expect(both.target.map((c) => c.plain)).toEqual([true, false, true]);
    expect(rowHashExpr(both.source)).toBe(rowHashExpr(both.target));
    const legacy = pairedHashColumns(source, target, 'md5');
    expect(rowHashExpr(legacy.source)).toBe(
      "MD5(CONCAT_WS(',', IFNULL(CONCAT(LENGTH(`id`), ':', `id`), 'N'), IFNULL(CONCAT(LENGTH(`n`), ':', `n`), 'N'), IFNULL(CONCAT(LENGTH(`at`), ':', `at`), 'N')))",
    );
  });

  it('converts only text in a character set other than UTF-8', () => {
    expect([needsUtf8(null), needsUtf8('utf8mb4'), needsUtf8('utf8mb3'), needsUtf8('binary'), needsUtf8('latin1'), needsUtf8('ucs2')]).toEqual([false, false, false, false, true, true]);
  });

  it('refuses an identifier that is not a plain name', () => {
    expect(() => rowHashExpr(utf8('id', 'x`; DROP TABLE t; --'))).toThrow(/not a plain identifier/);
  });

  it('compares count and checksum', () => {
    expect(sameChecksum({ rowCount: '2', checksum: '5' }, { rowCount: '2', checksum: '5' })).toBe(true);
    expect(sameChecksum({ rowCount: '2', checksum: '5' }, { rowCount: '3', checksum: '5' })).toBe(false);
  });

  it('names the ids that are missing, differ, or are extra', () => {
    const src = [{ id: '1', hash: 'a' }, { id: '2', hash: 'b' }, { id: '3', hash: 'c' }];
    const tgt = [{ id: '1', hash: 'a' }, { id: '3', hash: 'x' }, { id: '4', hash: 'd' }];
    expect(differingIds(src, tgt)).toEqual([
      { id: '2', problem: 'missing in target' },
      { id: '3', problem: 'differs' },
      { id: '4', problem: 'extra in target' },
    ]);
    expect(differingIds(src, tgt, 1)).toHaveLength(1);
  });

  describe('on MariaDB', () => {
    let conn: mysql.Connection;
    let dbs: Awaited<ReturnType<typeof makeDatabases>>;
    beforeAll(async () => {
      conn = await admin();
      dbs = await makeDatabases(conn, 'ck');
    });
    afterAll(async () => {
      await dbs.drop();
      await conn.end();
    });

    it('tells NULL from empty and a value moved to another column apart', async () => {
      const db = dbs.names.ck!;
      await conn.query(`CREATE TABLE \`${db}\`.t (id int PRIMARY KEY, a varchar(10) NULL, b varchar(10) NULL)`);
      await conn.query(`INSERT INTO \`${db}\`.t VALUES (1, 'x', NULL), (2, NULL, 'x'), (3, '', NULL), (4, NULL, NULL)`);
      const [rows] = await conn.query(`SELECT id, ${rowHashExpr(utf8('a', 'b'))} AS h FROM \`${db}\`.t ORDER BY id`);
      const hashes = (rows as { h: string }[]).map((r) => String(r.h));
      expect(new Set(hashes).size).toBe(4);
    });

    /** The range checksum of a table's rows 1 and 2, by the expression given. */
    async function rangeSum(db: string, table: string, sql: string): Promise<string> {
      const [rows] = await conn.query(sql.replace('`d`.`t`', `\`${db}\`.\`${table}\``), [1, 2]);
      const r = (rows as Record<string, unknown>[])[0]!;
      return `${r.row_count}/${r.checksum}`;
    }

    it('tells apart two rows that swapped one character in the same place, which cancel out under BIT_XOR(CRC32)', async () => {
      const db = dbs.names.ck!;
      await conn.query(`CREATE TABLE \`${db}\`.src (id int PRIMARY KEY, v char(2) NOT NULL)`);
      await conn.query(`CREATE TABLE \`${db}\`.tgt (id int PRIMARY KEY, v char(2) NOT NULL)`);
      await conn.query(`INSERT INTO \`${db}\`.src VALUES (1, 'AB'), (2, 'CD')`);
      await conn.query(`INSERT INTO \`${db}\`.tgt VALUES (1, 'AD'), (2, 'CB')`);
      // CRC32 is affine in the bytes: for equal-length texts crc(a)^crc(b) depends only on a^b, the same here
      const crc = "SELECT COUNT(*) AS row_count, BIT_XOR(CRC32(CONCAT_WS('#', id, v))) AS checksum FROM `d`.`t` WHERE id BETWEEN ? AND ?";
      expect(await rangeSum(db, 'src', crc)).toBe(await rangeSum(db, 'tgt', crc));
      const ours = rangeChecksumSql('`d`.`t`', 'id', utf8('id', 'v'));
      expect(await rangeSum(db, 'src', ours)).not.toBe(await rangeSum(db, 'tgt', ours));
    });

    it('tells a separator inside a value from a column boundary', async () => {
      const db = dbs.names.ck!;
      await conn.query(`CREATE TABLE \`${db}\`.sep (id int PRIMARY KEY, a varchar(10) NULL, b varchar(10) NULL)`);
      await conn.query(`INSERT INTO \`${db}\`.sep VALUES (1, 'x,y', 'z'), (2, 'x', 'y,z'), (3, 'x#y', 'z'), (4, 'x', 'y#z'), (5, 'NULL', NULL), (6, NULL, 'NULL'), (7, "x'", 'y'), (8, 'x', "'y"), (9, 'N', NULL), (10, NULL, 'N'), (11, '1:x', NULL), (12, NULL, NULL)`);
      const [rows] = await conn.query(`SELECT id, ${rowHashExpr(utf8('a', 'b'))} AS h FROM \`${db}\`.sep ORDER BY id`);
      expect(new Set((rows as { h: string }[]).map((r) => r.h)).size).toBe(12);
    });

    it('tells apart numbers and dates put in without their length: NULL, zero, a value moved to the next column', async () => {
      const db = dbs.names.ck!;
      await conn.query(`CREATE TABLE \`${db}\`.num (id int PRIMARY KEY, a int NULL, b decimal(6,2) NULL, c datetime NULL, d varchar(10) NULL)`);
      await conn.query(`INSERT INTO \`${db}\`.num VALUES (1, 1, NULL, NULL, NULL), (2, NULL, 1, NULL, NULL), (3, 0, NULL, NULL, NULL), (4, NULL, NULL, NULL, NULL),
        (5, NULL, NULL, '2024-01-01', NULL), (6, NULL, NULL, NULL, '2024-01-01'), (7, 12, NULL, NULL, '3'), (8, 1, NULL, NULL, '23'), (9, NULL, NULL, NULL, 'N'), (10, NULL, NULL, NULL, '')`);
      const [rows] = await conn.query(`SELECT id, ${rowHashExpr([...numbers('a', 'b', 'c'), ...utf8('d')])} AS h FROM \`${db}\`.num ORDER BY id`);
      expect(new Set((rows as { h: string }[]).map((r) => r.h)).size).toBe(10);
    });

    it('hashes the same characters alike in a latin1 and a utf8mb4 column', async () => {
      const db = dbs.names.ck!;
      await conn.query(`CREATE TABLE \`${db}\`.u8 (id int PRIMARY KEY, v varchar(10) CHARACTER SET utf8mb4 NULL)`);
      await conn.query(`CREATE TABLE \`${db}\`.l1 (id int PRIMARY KEY, v varchar(10) CHARACTER SET latin1 NULL)`);
      for (const t of ['u8', 'l1']) await conn.query(`INSERT INTO \`${db}\`.\`${t}\` VALUES (1, 'é ü'), (2, NULL)`);
      const asUtf8 = rangeChecksumSql('`d`.`t`', 'id', utf8('id', 'v'));
      const converted = rangeChecksumSql('`d`.`t`', 'id', [...utf8('id'), ...latin1('v')]);
      expect(await rangeSum(db, 'u8', asUtf8)).toBe(await rangeSum(db, 'l1', converted));
      await conn.query(`UPDATE \`${db}\`.l1 SET v = 'e u' WHERE id = 1`);
      expect(await rangeSum(db, 'u8', asUtf8)).not.toBe(await rangeSum(db, 'l1', converted));
    });
  });
});
