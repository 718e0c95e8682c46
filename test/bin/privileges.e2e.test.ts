import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFerry, tempDir, writeJson } from '../helpers/cli.ts';
import { csmSql, CSM } from '../helpers/alter-scenario.ts';
import { startSecondServer, type SecondServer } from '../helpers/second-server.ts';

/**
 * A server like RDS's default: a binary log, and ferry's user with every privilege on its schema
 * but not SUPER. ferry plan and the run refuse online-alter before anything is written, with the fix.
 */
describe('ferry checks the privileges each step needs before it writes anything', () => {
  let server: SecondServer;
  beforeAll(async () => {
    server = await startSecondServer({ args: ['--log-bin=ferry-bin', '--server-id=7', '--log-bin-trust-function-creators=0'] });
    const c = await server.connect();
    await c.query(`CREATE DATABASE app; ${csmSql('app', CSM)}; INSERT INTO app.${CSM} (module_id, student_id, created, modified, course_id) VALUES ('m', 1, NOW(6), NOW(6), 'c'), ('m', 2, NOW(6), NOW(6), 'c');
      CREATE USER 'ferry'@'%' IDENTIFIED BY 'ferry-pw'; GRANT ALL PRIVILEGES ON app.* TO 'ferry'@'%'; GRANT PROCESS ON *.* TO 'ferry'@'%'`);
    await c.end();
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('online-alter on a binlog server without SUPER: plan and run refuse (exit 2) naming log_bin_trust_function_creators, and nothing is written', async () => {
    const dir = tempDir();
    const input = writeJson(dir, 'in.json', { migrationId: 'priv', table: { connection: 'edxapp', database: 'app', table: CSM }, alter: 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT' });
    const env = { FERRY_MYSQL_EDXAPP: `mysql://ferry:ferry-pw@127.0.0.1:${server.port}` };
    const fix = /table\.connection: the server writes a binary log, and "edxapp"'s user may not create the triggers online-alter needs there \(.*\)\. On RDS or Aurora set log_bin_trust_function_creators = 1 in the DB parameter group/;
    const plan = await runFerry(['plan', 'online-alter', '--input', input, '--state-dir', `${dir}/state`], env);
    expect(plan.code, plan.stderr).toBe(2);
    expect(plan.stderr).toMatch(fix);
    const run = await runFerry(['local', 'online-alter', '--input', input, '--state-dir', `${dir}/state`, '--approve', 'all'], env);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(fix);
    const c = await server.connect();
    try {
      const [tables] = await c.query("SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' ORDER BY 1");
      expect((tables as { t: string }[]).map((r) => r.t)).toEqual([CSM]);
      const [triggers] = await c.query("SELECT COUNT(*) AS n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'app'");
      expect(Number((triggers as { n: string }[])[0]!.n)).toBe(0);
      // with the setting the fix names, the same run goes through
      await c.query('SET GLOBAL log_bin_trust_function_creators = 1');
      const ok = await runFerry(['local', 'online-alter', '--input', input, '--state-dir', `${dir}/state`, '--approve', 'all'], env);
      expect(ok.code, ok.stderr).toBe(0);
    } finally {
      await c.end();
    }
  });

  it('table-copy whose source user may not delete, with cleanup trickle-delete: plan and run refuse (exit 2) before anything is written, with the grant', async () => {
    const c = await server.connect();
    try {
      await c.query(`CREATE DATABASE src; CREATE DATABASE tgt;
        CREATE TABLE src.h (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, v varchar(20)); INSERT INTO src.h (v) VALUES ('a'), ('b');
        CREATE TABLE tgt.h (id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, v varchar(20));
        CREATE USER 'copier'@'%' IDENTIFIED BY 'copier-pw'; GRANT SELECT, LOCK TABLES ON src.* TO 'copier'@'%'; GRANT ALL PRIVILEGES ON tgt.* TO 'copier'@'%'`);
      const dir = tempDir();
      const input = (cleanup: string) => writeJson(dir, `${cleanup}.json`, {
        migrationId: `nodelete-${cleanup}`, source: { connection: 'src', database: 'src', table: 'h' }, target: { connection: 'tgt', database: 'tgt', table: 'h' },
        idOffset: '0', catchUp: { quietSeconds: 1, pollSeconds: 1 }, cleanup: { mode: cleanup },
      });
      const env = { MYSQL_URL: `mysql://copier:copier-pw@127.0.0.1:${server.port}` };
      for (const command of ['plan', 'local']) {
        const refused = await runFerry([command, 'table-copy', '--input', input('trickle-delete'), '--state-dir', `${dir}/state`, ...(command === 'local' ? ['--approve', 'all'] : [])], env);
        expect(refused.code, refused.stderr).toBe(2);
        expect(refused.stderr).toMatch(/cleanup\.mode: "src"'s user may not DELETE on src\.h, which cleanup "trickle-delete" does after the cut-over: GRANT DELETE ON `src`\.`h` TO ferry's user, or choose cleanup "none"/);
      }
      const [tables] = await c.query("SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'tgt'");
      expect((tables as { t: string }[]).map((r) => r.t)).toEqual(['h']);
      // with cleanup "none" it needs no more than it has; without PROCESS the plan says what the sweep will cost, and the run still goes through
      const plan = await runFerry(['plan', 'table-copy', '--input', input('none'), '--state-dir', `${dir}/state`], env);
      expect(plan.code, plan.stderr).toBe(0);
      expect(plan.stdout).toMatch(/warning: "src"'s user lacks PROCESS and cannot see the server's open transactions: every hole in the ids stays in the ledger/);
      const ok = await runFerry(['local', 'table-copy', '--input', input('none'), '--state-dir', `${dir}/state`, '--approve', 'all'], env);
      expect(ok.code, ok.stderr).toBe(0);
    } finally {
      await c.end();
    }
  });

  it('table-copy on a binlog server without SUPER: no revert window (the run says why and goes through), and nothing of the window is left behind', async () => {
    const c = await server.connect();
    try {
      await c.query(`SET GLOBAL log_bin_trust_function_creators = 0; CREATE DATABASE wsrc; CREATE DATABASE wtgt;
        CREATE TABLE wsrc.h (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, v varchar(20)); INSERT INTO wsrc.h (v) VALUES ('a'), ('b'), ('c');
        CREATE TABLE wtgt.h (id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, v varchar(20));
        CREATE USER 'windowless'@'%' IDENTIFIED BY 'w-pw'; GRANT ALL PRIVILEGES ON wsrc.* TO 'windowless'@'%'; GRANT ALL PRIVILEGES ON wtgt.* TO 'windowless'@'%'; GRANT PROCESS ON *.* TO 'windowless'@'%'`);
      const dir = tempDir();
      const input = writeJson(dir, 'in.json', {
        migrationId: 'windowless', source: { connection: 'src', database: 'wsrc', table: 'h' }, target: { connection: 'tgt', database: 'wtgt', table: 'h' },
        idOffset: '0', catchUp: { quietSeconds: 1, pollSeconds: 1 }, cleanup: { mode: 'none' },
      });
      const run = await runFerry(['local', 'table-copy', '--input', input, '--state-dir', `${dir}/state`, '--approve', 'all'], { MYSQL_URL: `mysql://windowless:w-pw@127.0.0.1:${server.port}` });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toMatch(/no revert window: the server refused ferry's triggers on wtgt\.h \(.*SUPER.*\); a revert will compare every span of the ledger/);
      expect(run.last).toMatchObject({ phase: 'done', revertWindow: expect.stringMatching(/^refused: /) });
      const [left] = await c.query("SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'wtgt' AND TABLE_NAME LIKE '\\_ferry\\_%\\_log'");
      expect(left).toEqual([]);
    } finally {
      await c.end();
    }
  });
});
