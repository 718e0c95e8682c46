import { describe, expect, it } from 'vitest';
import { KeyShape, keyKind, type KeyPredicate, type KeyValue } from '../../../lambdas/core/keys.ts';
import { inspectTable, keyShapeOf } from '../../../lambdas/core/tables/inspector.ts';
import { highestKey } from '../../../lambdas/core/tables/copier.ts';
import type { SqlConnection } from '../../../lambdas/core/ports/sql.ts';
import { testDatabase } from '../../helpers/test-database.ts';

/**
 * Each key shape a real table has, on the real server: a range, a page after a key, a list of keys
 * select exactly the rows the server's own ORDER BY puts there, whatever the columns' types and
 * collations, and the server reads them as one range of the index.
 */
const SHAPES: Record<string, { table: string; key: string[]; rows: (n: number) => string }> = {
  'int + datetime(6)': {
    table: '(id int NOT NULL, ts datetime(6) NOT NULL, v int, PRIMARY KEY (id, ts))',
    key: ['id', 'ts'],
    rows: (n) => `SELECT seq DIV 4, TIMESTAMP('2024-01-01 00:00:00') + INTERVAL (seq % 4) * 1000001 MICROSECOND, seq FROM seq_1_to_${n}`,
  },
  'CHAR(36) uuid, case-insensitive': {
    table: '(id char(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL PRIMARY KEY, v int)',
    key: ['id'],
    // upper and lower case mixed: the collation, not the bytes, orders them
    rows: (n) => `SELECT IF(seq % 2, UPPER(UUID()), UUID()), seq FROM seq_1_to_${n}`,
  },
  'BINARY(16)': {
    table: '(id binary(16) NOT NULL PRIMARY KEY, v int)',
    key: ['id'],
    rows: (n) => `SELECT UNHEX(MD5(seq)), seq FROM seq_1_to_${n}`,
  },
  'varchar + int': {
    table: "(name varchar(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL, n int NOT NULL, v int, PRIMARY KEY (name, n))",
    key: ['name', 'n'],
    // accents and case the collation treats as equal come in different rows, told apart by n
    rows: (n) => `SELECT ELT(1 + seq % 5, 'apple', 'Äpple', 'banana', 'zebra', 'école'), seq, seq FROM seq_1_to_${n}`,
  },
  'int + enum': {
    table: "(id int NOT NULL, e enum('zeta', 'alpha', 'mid') NOT NULL, v int, PRIMARY KEY (id, e))",
    key: ['id', 'e'],
    rows: (n) => `SELECT seq DIV 3, 1 + seq % 3, seq FROM seq_1_to_${n}`,
  },
};

describe('KeyShape on MariaDB', () => {
  const td = testDatabase('keys');

  async function keysWhere(conn: SqlConnection, table: string, shape: KeyShape, where: KeyPredicate | null, limit?: number): Promise<KeyValue[]> {
    const rows = await conn.query(
      `SELECT ${shape.select()} FROM \`${td.db}\`.\`${table}\`${where ? ` WHERE ${where.sql}` : ''} ORDER BY ${shape.orderBy()}${limit ? ` LIMIT ${limit}` : ''}`,
      where?.params ?? [],
    );
    return rows.map((r) => shape.fromRow(r));
  }

  for (const [name, spec] of Object.entries(SHAPES)) {
    it(`${name}: ranges, pages and lists select exactly the rows the index holds there, read as a range`, async () => {
      const table = `k_${name.replace(/[^a-z0-9]+/gi, '_')}`;
      await td.conn.query(`CREATE TABLE \`${td.db}\`.\`${table}\` ${spec.table}; INSERT INTO \`${td.db}\`.\`${table}\` ${spec.rows(3000).replace(/seq_1_to/, `\`${td.db}\`.seq_1_to`)}; ANALYZE TABLE \`${td.db}\`.\`${table}\``);
      const conn = await td.sql.connect('edxapp');
      const info = (await inspectTable(conn, { database: td.db, table }))!;
      expect(info.uniqueIndexes.find((k) => k.whole)?.columns).toEqual(spec.key);
      const shape = keyShapeOf(info, spec.key);
      if (!(shape instanceof KeyShape)) throw new Error(shape.unsupported);
      const all = await keysWhere(conn, table, shape, null);
      expect(all.length).toBe(3000);
      expect(new Set(all).size).toBe(3000);
      for (const k of all.slice(0, 50)) expect(shape.encode(shape.decode(k))).toBe(k);

      // page after page, each from the last key seen: every row once, in the index's order
      const paged: KeyValue[] = [];
      for (let page = await keysWhere(conn, table, shape, null, 97); page.length && paged.length <= all.length; page = await keysWhere(conn, table, shape, shape.after(paged[paged.length - 1]!), 97)) paged.push(...page);
      expect(paged).toEqual(all);

      // ranges between two keys, both ends in, and what lies before or after one
      const picks = [[0, 0], [0, 2999], [17, 18], [250, 1999], [1234, 1234], [2998, 2999], [3, 1500]] as const;
      for (const [i, j] of picks) {
        expect(await keysWhere(conn, table, shape, shape.between(all[i]!, all[j]!))).toEqual(all.slice(i, j + 1));
      }
      expect(await keysWhere(conn, table, shape, shape.before(all[700]!))).toEqual(all.slice(0, 700));
      expect(await keysWhere(conn, table, shape, shape.before(all[700]!, false))).toEqual(all.slice(0, 701));
      expect(await keysWhere(conn, table, shape, shape.after(all[2500]!, false))).toEqual(all.slice(2500));
      const some = [all[5]!, all[900]!, all[2999]!];
      expect(await keysWhere(conn, table, shape, shape.oneOf(some))).toEqual(some);
      expect(await keysWhere(conn, table, shape, shape.equals(all[42]!))).toEqual([all[42]]);

      // the server reads a range of the index, not the whole of it
      const between = shape.between(all[1000]!, all[1100]!);
      const plan = await conn.query(`EXPLAIN SELECT ${shape.select()} FROM \`${td.db}\`.\`${table}\` WHERE ${between.sql}`, between.params);
      expect({ type: plan[0]!.type, key: plan[0]!.key }).toEqual({ type: 'range', key: 'PRIMARY' });
    });
  }

  it('a key wider than the unique index it is read through, (id, i) by the primary key on id, pages in the same order without a sort', async () => {
    await td.conn.query(`CREATE TABLE \`${td.db}\`.wide (id int NOT NULL PRIMARY KEY, i int NOT NULL, v int); INSERT INTO \`${td.db}\`.wide SELECT seq * 3, seq % 7, seq FROM \`${td.db}\`.seq_1_to_5000; ANALYZE TABLE \`${td.db}\`.wide`);
    const conn = await td.sql.connect('edxapp');
    const columns = [{ name: 'id', kind: 'integer' as const }, { name: 'i', kind: 'integer' as const }];
    const byIndex = new KeyShape(columns, 1);
    const whole = new KeyShape(columns);
    expect(byIndex.orderBy()).toBe('`id` ASC');
    expect(() => new KeyShape(columns, 3)).toThrow(/ordered by 1 to 2/);
    // paging after a key, 700 rows at a time, meets every row once, in the order of ORDER BY id, i
    const paged: KeyValue[] = [];
    for (let after: KeyValue | null = null; ; ) {
      const where: KeyPredicate | null = after === null ? null : byIndex.after(after);
      const page = await keysWhere(conn, 'wide', byIndex, where, 700);
      paged.push(...page);
      if (page.length < 700) break;
      after = page[page.length - 1]!;
    }
    expect(paged).toEqual(await keysWhere(conn, 'wide', whole, null));
    expect(paged).toHaveLength(5000);
    // the statement a chunk's end is found with: read in the index's order, no filesort
    const rest = byIndex.within({ lo: '["300","2"]', loExcluded: true, hi: '["15000","5"]' });
    const plan = await conn.query(`EXPLAIN SELECT ${byIndex.select()} FROM \`${td.db}\`.wide WHERE ${rest.sql} ORDER BY ${byIndex.orderBy()} LIMIT 1 OFFSET 999`, rest.params);
    expect(plan[0]).toMatchObject({ key: 'PRIMARY' });
    expect(String(plan[0]!.Extra)).not.toMatch(/filesort/);
    const sorted = await conn.query(`EXPLAIN SELECT ${whole.select()} FROM \`${td.db}\`.wide WHERE ${rest.sql} ORDER BY ${whole.orderBy()} LIMIT 1 OFFSET 999`, rest.params);
    expect(String(sorted[0]!.Extra)).toMatch(/filesort/);
  });

  it('the highest key of two tables is found as the key compares, an ENUM by its position, not its label', async () => {
    const shape = "(kind enum('b','a','c') NOT NULL, id int NOT NULL, PRIMARY KEY (kind, id))";
    await td.conn.query(`CREATE TABLE \`${td.db}\`.e1 ${shape}; CREATE TABLE \`${td.db}\`.e2 ${shape}; CREATE TABLE \`${td.db}\`.e3 ${shape};
      INSERT INTO \`${td.db}\`.e1 VALUES ('b', 1), ('a', 2); INSERT INTO \`${td.db}\`.e2 VALUES ('b', 3), ('c', 1); INSERT INTO \`${td.db}\`.e3 VALUES ('a', 9)`);
    const conn = await td.sql.connect('edxapp');
    const key = new KeyShape([{ name: 'kind', kind: 'enum' }, { name: 'id', kind: 'integer' }]);
    const t = (table: string) => ({ database: td.db, table });
    // 'c' is the third member: above 'a' and 'b', whatever the labels' alphabetical order
    expect(await highestKey(conn, [t('e1'), t('e2')], key)).toBe('["3","1"]');
    expect(await highestKey(conn, [t('e2'), t('e1')], key)).toBe('["3","1"]');
    expect(await highestKey(conn, [t('e1'), t('e3')], key)).toBe('["2","9"]');
    await td.conn.query(`CREATE TABLE \`${td.db}\`.e4 ${shape}`);
    expect(await highestKey(conn, [t('e4')], key)).toBeNull();
  });

  it('travels as strings: an integer key as its decimal id, any other as a JSON array; values of the wrong form are refused', () => {
    const id = new KeyShape([{ name: 'id', kind: 'integer' }]);
    expect(id.isInteger).toBe(true);
    expect(id.encode(['18446744073709551615'])).toBe('18446744073709551615');
    expect(id.after('18446744073709551615')).toEqual({ sql: '`id` > ?', params: ['18446744073709551615'] });
    const pair = new KeyShape([{ name: 'name', kind: 'text' }, { name: 'raw', kind: 'binary' }]);
    expect(pair.encode(['a"b', '00FF'])).toBe('["a\\"b","00FF"]');
    expect(pair.decode('["a\\"b","00FF"]')).toEqual(['a"b', '00FF']);
    expect(() => pair.decode('["only one"]')).toThrow(/not a key of \(name, raw\)/);
    expect(() => pair.equals(pair.encode(['x', 'not hex']))).toThrow(/not hex/);
    expect(() => id.equals('1 OR 1=1')).toThrow(/not an integer/);
    expect(() => new KeyShape([{ name: 'a`b', kind: 'text' }])).toThrow(/not a plain identifier/);
    expect([keyKind('BIGINT'), keyKind('varbinary'), keyKind('enum'), keyKind('datetime'), keyKind('double'), keyKind('decimal')]).toEqual(['integer', 'binary', 'enum', 'temporal', null, null]);
  });
});
