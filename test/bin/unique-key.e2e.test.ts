import { afterEach, describe, expect, it } from 'vitest';
import { runFerry } from '../helpers/cli.ts';
import { MYSQL_URL, OTHER_HOST_URL, seedHistory, tableFingerprint } from '../helpers/db.ts';
import { scenario, SRC, TGT, type Scenario } from '../helpers/scenario.ts';

/** Both history tables keyed by a unique key on the id instead of a primary key. */
async function keyedByUniqueKey(sc: Scenario): Promise<void> {
  for (const t of [`\`${sc.src}\`.${SRC}`, `\`${sc.tgt}\`.${TGT}`]) await sc.conn.query(`ALTER TABLE ${t} DROP PRIMARY KEY, ADD UNIQUE KEY row_id (id)`);
}

/**
 * A table with no primary key but a unique key on a NOT NULL integer column is read by that key,
 * as InnoDB stores it: table-copy copies, verifies and empties it on one server and between two,
 * with the application inserting into it while it runs.
 */
describe('ferry local table-copy of a table keyed by a unique key', () => {
  let sc: Scenario | undefined;
  afterEach(async () => {
    await sc?.close();
    sc = undefined;
  });

  for (const servers of ['one server', 'two servers'] as const) {
    it(`moves it with the rows the application inserts meanwhile (${servers})`, async () => {
      sc = await scenario();
      const s = sc;
      await keyedByUniqueKey(s);
      await seedHistory(s.conn, s.src, SRC, 6000, { step: 3n, stateBytes: 200 });
      const env = servers === 'two servers' ? { FERRY_MYSQL_EDXAPP: MYSQL_URL, FERRY_MYSQL_CSMH: OTHER_HOST_URL } : {};
      const runP = runFerry(['local', 'table-copy', '--input', s.inputFile({ cleanup: { mode: 'trickle-delete', batchRows: 700 }, catchUp: { quietSeconds: 3, pollSeconds: 1 } }), '--state-dir', s.stateDir, '--approve', 'all'], env);
      let inserted = 0;
      for (let i = 0; i < 20; i++) {
        await s.conn.query(`INSERT INTO \`${s.src}\`.${SRC} (created, state, student_module_id) VALUES (NOW(6), 'late', ?)`, [i]);
        inserted++;
        await new Promise((r) => setTimeout(r, 100));
      }
      const before = await tableFingerprint(s.conn, s.src, SRC);
      const run = await runP;
      expect(run.code, run.stderr).toBe(0);
      expect(inserted).toBe(20);
      // the source as it was once the application stopped (the catch-up waits 3 quiet seconds, so nothing was deleted yet)
      expect(before.rows).toBe('6020');
      expect(await tableFingerprint(s.conn, s.tgt, TGT)).toEqual(before);
      expect((await tableFingerprint(s.conn, s.src, SRC)).rows).toBe('0');
      expect(run.last).toMatchObject({ phase: 'done', rowsDeleted: '6020' });
    }, 300_000);
  }

  it('reads by a later unique key on the integer id when the first one InnoDB stores the table by is composite', async () => {
    sc = await scenario();
    await sc.conn.query(`ALTER TABLE \`${sc.src}\`.${SRC} DROP PRIMARY KEY, ADD UNIQUE KEY by_module (student_module_id, id), ADD UNIQUE KEY row_id (id)`);
    await seedHistory(sc.conn, sc.src, SRC, 2000, { step: 2n });
    const before = await tableFingerprint(sc.conn, sc.src, SRC);
    const run = await runFerry(['local', 'table-copy', '--input', sc.inputFile({ cleanup: { mode: 'none' } }), '--state-dir', sc.stateDir, '--approve', 'all']);
    expect(run.code, run.stderr).toBe(0);
    expect(await tableFingerprint(sc.conn, sc.tgt, TGT)).toEqual(before);
  }, 300_000);

  it('refuses a table with no key it can read by, naming what it has, and writes nothing', async () => {
    sc = await scenario({ rows: 50 });
    await sc.conn.query(`ALTER TABLE \`${sc.src}\`.${SRC} MODIFY id int NOT NULL, DROP PRIMARY KEY, ADD COLUMN token int NULL, ADD UNIQUE KEY maybe (token)`);
    const run = await runFerry(['local', 'table-copy', '--input', sc.inputFile(), '--state-dir', sc.stateDir, '--approve', 'all']);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/source\.table: courseware_studentmodulehistory has no unique key ferry can copy by \(its unique keys: maybe \(token\)\)/);
    const [tables] = await sc.conn.query(`SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?`, [sc.tgt]);
    expect((tables as { t: string }[]).map((r) => r.t)).toEqual([TGT]);
  });

  it('refuses a target keyed otherwise than the source', async () => {
    sc = await scenario({ rows: 50 });
    await sc.conn.query(`ALTER TABLE \`${sc.src}\`.${SRC} DROP PRIMARY KEY, ADD UNIQUE KEY row_id (id)`);
    await sc.conn.query(`ALTER TABLE \`${sc.tgt}\`.${TGT} MODIFY id bigint unsigned NOT NULL, DROP PRIMARY KEY, ADD UNIQUE KEY by_module (student_module_id, id)`);
    const run = await runFerry(['local', 'table-copy', '--input', sc.inputFile(), '--state-dir', sc.stateDir, '--approve', 'all']);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/target\.table: .* must have a unique key on id alone, NOT NULL, like the source .*; its unique keys: by_module \(student_module_id, id\)/);
  });
});
