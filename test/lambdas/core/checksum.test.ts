import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { differingIds, rangeChecksumSql, rowHashExpr, sameChecksum } from '../../../lambdas/core/checksum.ts';
import { admin, makeDatabases } from '../../helpers/db.ts';

describe('checksum SQL', () => {
  it('hashes the columns in order with a null bitmap, every identifier quoted', () => {
    expect(rowHashExpr(['id', 'state'])).toBe("CRC32(CONCAT_WS('#', `id`, `state`, CONCAT(ISNULL(`id`), ISNULL(`state`))))");
    expect(rangeChecksumSql('`d`.`t`', 'id', ['id'])).toBe(
      "SELECT COUNT(*) AS row_count, COALESCE(BIT_XOR(CRC32(CONCAT_WS('#', `id`, CONCAT(ISNULL(`id`))))), 0) AS checksum FROM `d`.`t` WHERE `id` BETWEEN ? AND ?",
    );
  });

  it('refuses an identifier that is not a plain name', () => {
    expect(() => rowHashExpr(['id', 'x`; DROP TABLE t; --'])).toThrow(/not a plain identifier/);
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
      const [rows] = await conn.query(`SELECT id, ${rowHashExpr(['a', 'b'])} AS h FROM \`${db}\`.t ORDER BY id`);
      const hashes = (rows as { h: string }[]).map((r) => String(r.h));
      expect(new Set(hashes).size).toBe(4);
    });
  });
});
