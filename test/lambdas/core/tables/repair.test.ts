import { describe, expect, it } from 'vitest';
import { copyRange } from '../../../../lambdas/core/tables/copier.ts';
import { KeyShape } from '../../../../lambdas/core/keys.ts';
import { differingKeys, repairKeys, repairRange } from '../../../../lambdas/core/tables/verifier.ts';
import { createShadow } from '../../../../lambdas/core/tables/shadow.ts';
import { besideApplication, localCopyTables } from '../../../helpers/lock-scenes.ts';
import { testDatabase } from '../../../helpers/test-database.ts';

const SHAPE = (idType: string) => `(id ${idType} NOT NULL AUTO_INCREMENT PRIMARY KEY, k int NOT NULL, name varchar(20) NOT NULL, v int NULL, UNIQUE KEY uk (k, name))`;

/**
 * The repair of a range of online-alter's shadow, with the application writing the shadow (as its
 * triggers do) in an open transaction beside it. InnoDB ends a lock cycle by failing the
 * transaction that changed fewer rows: always the application's. The repair must never hold a
 * lock the application's next write waits for while it waits for one of the application's.
 */
describe('repairRange and the copy beside an application transaction', () => {
  const td = testDatabase('rep');

  const tables = (from: string, to: string) => localCopyTables(td, from, to, { readLock: true });
  const noError = { ferry: expect.not.objectContaining({ error: expect.anything() }) };

  /**
   * An application transaction that has written row `first` of `table` and, while `work` runs on a
   * range holding both, writes row `second`, below it: ferry must not wait for `first` holding
   * `second`.
   */
  const secondWrite = (table: string, first: number, second: number, work: () => Promise<unknown>) =>
    besideApplication([`UPDATE \`${td.db}\`.${table} SET v = v + 1 WHERE id = ${first}`], work, `UPDATE \`${td.db}\`.${table} SET v = v + 1 WHERE id = ${second}`);

  it("repairs a range of a target whose statistics say it is empty, locking that range only, without failing an application transaction that holds a row elsewhere and then writes one in the range", async () => {
    // _s_new's statistics are those of the empty table it was created as (no recalculation), though it holds 3,000 rows: a
    // locking read of a range that the optimizer plans by them scans the table, locking every row it passes
    await td.conn.query(`CREATE TABLE \`${td.db}\`.s ${SHAPE('int')}; CREATE TABLE \`${td.db}\`._s_new ${SHAPE('bigint')} STATS_AUTO_RECALC=0, STATS_PERSISTENT=1`);
    await td.conn.query(`INSERT INTO \`${td.db}\`.s (id, k, name, v) SELECT seq, seq, 'a', seq FROM \`${td.db}\`.seq_1_to_3000;
      INSERT INTO \`${td.db}\`._s_new SELECT * FROM \`${td.db}\`.s; UPDATE \`${td.db}\`._s_new SET v = -1 WHERE id BETWEEN 10 AND 20`);
    const [stats] = await td.conn.query('SELECT n_rows FROM mysql.innodb_table_stats WHERE database_name = ? AND table_name = ?', [td.db, '_s_new']);
    expect(Number((stats as { n_rows: string }[])[0]?.n_rows ?? 0)).toBeLessThan(100);
    const t = await tables('s', '_s_new');
    // the application's transaction holds row 2500 of the target (as a trigger's write there does), then writes row 15
    const app = await besideApplication([`UPDATE \`${td.db}\`._s_new SET v = v WHERE id = 2500`], () => repairRange(t.source, t, { lo: '1', hi: '100' }), `UPDATE \`${td.db}\`._s_new SET v = v WHERE id = 15`);
    expect(app).toMatchObject({ app: null, ...noError });
    const [rows] = await td.conn.query(`SELECT COUNT(*) AS n FROM \`${td.db}\`._s_new WHERE v = -1`);
    expect(Number((rows as { n: string }[])[0]!.n)).toBe(0);
  });

  it("copies a range whose rows an application transaction writes one after another, high then low, without failing the application's second write", async () => {
    await td.conn.query(`CREATE TABLE \`${td.db}\`.c ${SHAPE('int')}; CREATE TABLE \`${td.db}\`._c_new ${SHAPE('bigint')}`);
    await td.conn.query(`INSERT INTO \`${td.db}\`.c (id, k, name, v) SELECT seq, seq, 'a', seq FROM \`${td.db}\`.seq_1_to_100`);
    const t = await tables('c', '_c_new');
    expect(await secondWrite('c', 50, 10, () => copyRange(t, { lo: '1', hi: '100' }))).toMatchObject({ app: null, ...noError });
    const [rows] = await td.conn.query(`SELECT COUNT(*) AS n FROM \`${td.db}\`._c_new`);
    expect(Number((rows as { n: string }[])[0]!.n)).toBe(100);
  });

  it("copies by a composite key a range whose rows an application transaction writes high then low, without failing the application's second write, and copies every row", async () => {
    const shape = '(name varchar(20) NOT NULL, n int NOT NULL, v int NULL, PRIMARY KEY (name, n))';
    await td.conn.query(`CREATE TABLE \`${td.db}\`.ck ${shape}; CREATE TABLE \`${td.db}\`._ck_new ${shape}`);
    await td.conn.query(`INSERT INTO \`${td.db}\`.ck (name, n, v) SELECT CONCAT('u', seq DIV 10), seq, seq FROM \`${td.db}\`.seq_1_to_100`);
    const t = await tables('ck', '_ck_new');
    const key = new KeyShape([{ name: 'name', kind: 'text' }, { name: 'n', kind: 'integer' }]);
    const ck = { ...t, key, idColumn: 'name' };
    const app = await besideApplication(
      [`UPDATE \`${td.db}\`.ck SET v = v + 1 WHERE name = 'u5' AND n = 50`],
      () => copyRange(ck, { lo: null, hi: '["u9","99"]' }),
      `UPDATE \`${td.db}\`.ck SET v = v + 1 WHERE name = 'u1' AND n = 10`,
    );
    expect(app).toMatchObject({ app: null, ...noError });
    const [rows] = await td.conn.query(`SELECT COUNT(*) AS n FROM \`${td.db}\`._ck_new`);
    expect(Number((rows as { n: string }[])[0]!.n)).toBe(100);
  });

  it("copies a piece while an application transaction deletes the row after it and then inserts, without failing the insert (the copy holds no AUTO-INC lock while it waits)", async () => {
    // the ALTER moves the primary key; ferry's real triggers keep the shadow in step
    await td.conn.query(`CREATE TABLE \`${td.db}\`.m (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, a int NOT NULL, b int NOT NULL, v int NULL, UNIQUE KEY ab (a, b));
      INSERT INTO \`${td.db}\`.m (id, a, b, v) SELECT seq, (seq * 37) % 101, 0, seq FROM \`${td.db}\`.seq_1_to_100`);
    const conn = await td.sql.connect('edxapp');
    const m = { database: td.db, table: 'm' };
    await createShadow(conn, 'repm', m, 'DROP PRIMARY KEY, DROP KEY ab, ADD PRIMARY KEY (a, b), ADD UNIQUE KEY row_id (id)', 'id', { seconds: 2, attempts: 1 });
    // the copy has reached id 50; an earlier write of the application put row 55 in the shadow
    await td.conn.query(`INSERT INTO \`${td.db}\`._m_new SELECT * FROM \`${td.db}\`.m WHERE id <= 50; UPDATE \`${td.db}\`.m SET v = -55 WHERE id = 55`);
    const t = await tables('m', '_m_new');
    // the application deletes row 70: its trigger writes the row to the shadow and takes it out again, keeping it locked;
    // its next statement inserts a row, and its trigger writes it to the shadow
    expect(await besideApplication([`DELETE FROM \`${td.db}\`.m WHERE id = 70`], () => copyRange(t, { lo: '51', hi: '60' }), `INSERT INTO \`${td.db}\`.m (a, b, v) VALUES (1000, 1, 0)`))
      .toMatchObject({ app: null, ...noError });
    const [rows] = await td.conn.query(`SELECT COUNT(*) AS n FROM \`${td.db}\`.m a JOIN \`${td.db}\`._m_new b USING (id) WHERE a.v <=> b.v AND a.a = b.a`);
    // rows 1 … 60, and the application's new one
    expect(Number((rows as { n: string }[])[0]!.n)).toBe(61);
  });

  it("copies a piece while an application transaction deletes a row and gives its unique value to a new one, then inserts, without failing the last insert", async () => {
    // the canonical ALTER, the id still the shadow's primary key; another unique key, u. Row 51's value sorts below the others, so
    // the piece writes it (an INSERT … SELECT takes the AUTO-INC lock with its first row) before it meets the gap locked below 5000
    const shape = (id: string) => `(id ${id} NOT NULL AUTO_INCREMENT PRIMARY KEY, u int NOT NULL, v int NULL, UNIQUE KEY uu (u))`;
    await td.conn.query(`CREATE TABLE \`${td.db}\`.q ${shape('int')}; CREATE TABLE \`${td.db}\`._q_new ${shape('bigint')};
      INSERT INTO \`${td.db}\`.q (id, u, v) SELECT seq, CASE WHEN seq <= 50 THEN seq * 2 WHEN seq = 51 THEN -1 WHEN seq < 100 THEN 200 + seq ELSE 5000 END, seq
        FROM \`${td.db}\`.seq_1_to_100;
      INSERT INTO \`${td.db}\`._q_new SELECT * FROM \`${td.db}\`.q WHERE id <= 50`);
    const t = await tables('q', '_q_new');
    const shadow = `\`${td.db}\`._q_new`;
    // what the application's triggers write to the shadow in its transaction: it deletes row 100 (written, then taken out), and
    // gives u = 5000 to a new row 101, whose INSERT IGNORE checks the entry left delete-marked, locking it and the gap before it;
    // then its next statement's trigger inserts a row
    const first = [`INSERT IGNORE INTO ${shadow} VALUES (100, 5000, 100)`, `DELETE IGNORE FROM ${shadow} WHERE id = 100`, `INSERT IGNORE INTO ${shadow} VALUES (101, 5000, 1)`];
    expect(await besideApplication(first, () => copyRange(t, { lo: '51', hi: '60' }), `INSERT IGNORE INTO ${shadow} VALUES (102, -5, 2)`)).toMatchObject({ app: null, ...noError });
    const [rows] = await td.conn.query(`SELECT COUNT(*) AS n FROM \`${td.db}\`.q a JOIN ${shadow} b USING (id) WHERE a.u = b.u AND a.v <=> b.v AND a.id <= 60`);
    expect(Number((rows as { n: string }[])[0]!.n)).toBe(60);
  });

  it("repairs a range whose rows an application transaction writes one after another, high then low, without failing the application's second write", async () => {
    await td.conn.query(`CREATE TABLE \`${td.db}\`.r ${SHAPE('int')}; CREATE TABLE \`${td.db}\`._r_new ${SHAPE('bigint')}`);
    await td.conn.query(`INSERT INTO \`${td.db}\`.r (id, k, name, v) SELECT seq, seq, 'a', seq FROM \`${td.db}\`.seq_1_to_100`);
    await td.conn.query(`INSERT INTO \`${td.db}\`._r_new SELECT * FROM \`${td.db}\`.r WHERE id <> 20`);
    const t = await tables('r', '_r_new');
    expect(await secondWrite('r', 50, 10, () => repairRange(t.source, t, { lo: '1', hi: '100' }))).toMatchObject({ app: null, ...noError });
    // row 20 written again; rows 10 and 50 as the application left them, or as they were: the shadow has no triggers here
    const [rows] = await td.conn.query(`SELECT COUNT(*) AS n FROM \`${td.db}\`._r_new`);
    expect(Number((rows as { n: string }[])[0]!.n)).toBe(100);
  });

  it("waits for the application's row without holding the shadow's AUTO-INC lock: the application's next insert never deadlocks", async () => {
    await td.conn.query(`CREATE TABLE \`${td.db}\`.t ${SHAPE('int')}; CREATE TABLE \`${td.db}\`._t_new ${SHAPE('bigint')}`);
    await td.conn.query(`INSERT INTO \`${td.db}\`.t (id, k, name, v) SELECT seq, seq, 'a', seq FROM \`${td.db}\`.seq_1_to_11`);
    await td.conn.query(`INSERT INTO \`${td.db}\`._t_new SELECT * FROM \`${td.db}\`.t`);
    // the shadow's row 5 differs: the range 1 … 10 needs its repair (row 11, committed, bounds it)
    await td.conn.query(`UPDATE \`${td.db}\`._t_new SET v = -1 WHERE id = 5`);

    const t = await tables('t', '_t_new');
    // the application, in a transaction its triggers write the shadow in: a row whose unique key follows row 5's; then its next
    // write to the shadow (its next statement's trigger), while the repair runs
    expect(
      await besideApplication(
        [`INSERT INTO \`${td.db}\`._t_new (id, k, name, v) VALUES (1000, 5, 'b', 0)`],
        () => repairRange(t.source, t, { lo: '1', hi: '10' }),
        `INSERT INTO \`${td.db}\`._t_new (id, k, name, v) VALUES (1001, 99, 'z', 0)`,
      ),
    ).toMatchObject({ app: null, ...noError });
    const [rows] = await td.conn.query(`SELECT COUNT(*) AS n FROM \`${td.db}\`.t a JOIN \`${td.db}\`._t_new b USING (id) WHERE a.k = b.k AND a.name = b.name AND a.v <=> b.v`);
    expect(Number((rows as { n: string }[])[0]!.n)).toBe(11);
    const [extra] = await td.conn.query(`SELECT id FROM \`${td.db}\`._t_new WHERE id > 11 ORDER BY id`);
    expect((extra as { id: number }[]).map((r) => Number(r.id))).toEqual([1000, 1001]);
  });

  it('repairKeys makes the rows of a set of keys the source\'s in one transaction, and changes nothing when the application holds one of them or the target refuses one', async () => {
    await td.conn.query(`CREATE TABLE \`${td.db}\`.rk ${SHAPE('bigint')}; CREATE TABLE \`${td.db}\`._rk_old ${SHAPE('int')}`);
    await td.conn.query(`INSERT INTO \`${td.db}\`.rk (id, k, name, v) SELECT seq, seq, 'a', seq FROM \`${td.db}\`.seq_1_to_50;
      INSERT INTO \`${td.db}\`._rk_old SELECT * FROM \`${td.db}\`.rk WHERE id <> 7; UPDATE \`${td.db}\`._rk_old SET v = -1 WHERE id = 8;
      INSERT INTO \`${td.db}\`._rk_old (id, k, name, v) VALUES (60, 60, 'a', 60)`);
    const t = await tables('rk', '_rk_old');
    const keys = ['6', '7', '8', '9', '60'];
    // 7 missing, 8 changed, 60 gone from the source; 6 and 9 equal
    expect(await differingKeys(t.source, t, keys)).toEqual(['7', '8', '60']);
    // the application holds row 8 of the source: nothing is changed, and the caller goes key by key
    const held = await besideApplication([`UPDATE \`${td.db}\`.rk SET v = v WHERE id = 8`], () => repairKeys(t.source, t, ['7', '8', '60']), 'SELECT 1');
    expect(held).toMatchObject({ app: null, ferry: null });
    expect(await differingKeys(t.source, t, keys)).toEqual(['7', '8', '60']);
    expect(await repairKeys(t.source, t, ['7', '8', '60'])).toBe(3);
    expect(await differingKeys(t.source, t, keys)).toEqual([]);
    // a value the target's int cannot hold: refused, nothing changed
    await td.conn.query(`UPDATE \`${td.db}\`.rk SET id = 5000000000 WHERE id = 9; UPDATE \`${td.db}\`.rk SET v = 99 WHERE id = 6`);
    expect(await repairKeys(t.source, t, ['6', '9', '5000000000'])).toBeNull();
    expect(await differingKeys(t.source, t, ['6', '9'])).toEqual(['6', '9']);
  });
});
