import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runFerry } from '../helpers/cli.ts';
import { tableFingerprint, urlAs } from '../helpers/db.ts';
import { scenario, TGT, type Scenario } from '../helpers/scenario.ts';

describe('ferry local table-copy refuses bad input with exit 2 and writes nothing', () => {
  let sc: Scenario;
  afterEach(async () => sc.close());

  async function expectRefused(mutate: (s: Scenario) => Promise<Record<string, unknown>>, field: string, message: RegExp, env: (s: Scenario) => NodeJS.ProcessEnv = () => ({})) {
    sc = await scenario({ rows: 100 });
    const overrides = await mutate(sc);
    const file = sc.inputFile(overrides);
    const targetBefore = await tableFingerprint(sc.conn, sc.tgt, TGT).catch(() => null);
    const autoIncrement = async () => {
      const [rows] = await sc.conn.query(`SELECT AUTO_INCREMENT AS ai FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, [sc.tgt, TGT]);
      return String((rows as { ai: string }[])[0]?.ai ?? 'none');
    };
    const autoIncrementBefore = await autoIncrement();
    const run = await runFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all'], env(sc));
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toContain(field);
    expect(run.stderr).toMatch(message);
    const [cps] = await sc.conn.query(`SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_NAME = '_ferry_checkpoints' AND TABLE_SCHEMA IN (?, ?)`, [sc.src, sc.tgt]);
    expect(cps).toEqual([]);
    expect(existsSync(join(sc.stateDir, 'flags.json'))).toBe(false);
    expect(await tableFingerprint(sc.conn, sc.tgt, TGT).catch(() => null)).toEqual(targetBefore);
    expect(await autoIncrement()).toBe(autoIncrementBefore);
  }

  it('an unknown field', () => expectRefused(async () => ({ surprise: true }), '(input)', /unknown field "surprise"/));
  it('an identifier with quoting tricks', () => expectRefused(async (s) => ({ source: { connection: 'edxapp', database: s.src, table: 'x`; DROP TABLE y; --' } }), 'source.table', /plain table name/));
  it('a missing source table', () => expectRefused(async (s) => ({ source: { connection: 'edxapp', database: s.src, table: 'nope' } }), 'source.table', /does not exist/));
  it('a missing database', () => expectRefused(async () => ({ target: { connection: 'csmh', database: 'ferry_no_such_db', table: TGT } }), 'target.database', /does not exist/));
  it('a target that lacks source columns', () =>
    expectRefused(async (s) => {
      await s.conn.query(`ALTER TABLE \`${s.tgt}\`.${TGT} DROP COLUMN max_grade`);
      return {};
    }, 'target.table', /lacks source column\(s\) max_grade/));
  it('a table with no unique key ferry can copy by', () =>
    expectRefused(async (s) => {
      await s.conn.query(`CREATE TABLE \`${s.src}\`.unkeyed (a int NULL, b float NOT NULL, UNIQUE KEY maybe (a), UNIQUE KEY approx (b))`);
      return { source: { connection: 'edxapp', database: s.src, table: 'unkeyed' } };
    }, 'source.table', /unkeyed has no unique key ferry can copy by \(its unique keys: approx \(b\), maybe \(a\)\); ferry copies a table by a unique key whose columns are all NOT NULL/));
  it('a target id type too small for the source', () =>
    expectRefused(async (s) => {
      await s.conn.query(`ALTER TABLE \`${s.tgt}\`.${TGT} MODIFY id smallint NOT NULL AUTO_INCREMENT`);
      return {};
    }, 'target.table', /too small/));
  it('no room above the source ids for the default idOffset', () =>
    expectRefused(async (s) => {
      await s.conn.query(`INSERT INTO \`${s.src}\`.courseware_studentmodulehistory (id, created, student_module_id) VALUES (2147483000, NOW(6), 1)`);
      await s.conn.query(`ALTER TABLE \`${s.tgt}\`.${TGT} MODIFY id int NOT NULL AUTO_INCREMENT`);
      return { idOffset: undefined };
    }, 'idOffset', /no room above the source's ids for the default offset of 1000000 ids; widen it, or give idOffset explicitly/));
  it('a source user that may not lock the source table', async () => {
    const user = `ferry_np_${process.pid}`;
    try {
      await expectRefused(
        async (s) => {
          await s.conn.query(`CREATE USER IF NOT EXISTS '${user}'@'%' IDENTIFIED BY 'pw'`);
          for (const db of [s.src, s.tgt]) await s.conn.query(`GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP ON \`${db}\`.* TO '${user}'@'%'`);
          return {};
        },
        'source.connection',
        /waits for the transactions writing to .* with LOCK TABLES … READ .* GRANT LOCK TABLES ON `ferry_t_edxapp_\w+`\.\* TO/,
        () => ({ FERRY_MYSQL_EDXAPP: urlAs(user, 'pw'), FERRY_MYSQL_CSMH: urlAs(user, 'pw') }),
      );
    } finally {
      await sc.conn.query(`DROP USER IF EXISTS '${user}'@'%'`);
    }
  });
  it('absurd chunk sizes', () => expectRefused(async () => ({ chunk: { minRows: 0 } }), 'chunk.minRows', /at least 1/));
  it('a target that already holds rows with no checkpoint', () =>
    expectRefused(async (s) => {
      await s.conn.query(`INSERT INTO \`${s.tgt}\`.${TGT} (id, created, student_module_id) VALUES (5, NOW(6), 1)`);
      return {};
    }, 'target.table', /already holds rows/));

  it('a different input for a migrationId that has a checkpoint', async () => {
    sc = await scenario({ rows: 100 });
    const ok = await runFerry(['local', 'table-copy', '--input', sc.inputFile({ cleanup: { mode: 'none' } }), '--state-dir', sc.stateDir, '--approve', 'all']);
    expect(ok.code, ok.stderr).toBe(0);
    const run = await runFerry(['local', 'table-copy', '--input', sc.inputFile({ cleanup: { mode: 'none' }, idOffset: '99' }), '--state-dir', sc.stateDir, '--approve', 'all']);
    expect(run.code).toBe(2);
    expect(run.last).toMatchObject({ error: 'CheckpointConflict', cause: expect.stringContaining('idOffset') });
  });
});
