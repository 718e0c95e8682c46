import { existsSync, readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { runFerry } from '../helpers/cli.ts';
import { phaseGate, tableFingerprint, urlAs } from '../helpers/db.ts';
import { scenario, SRC, TGT, type Scenario } from '../helpers/scenario.ts';

const SECRET = 'hunter2-s3cret-value';

/** The operator's throttle query runs with the migration's credentials: whatever it reads, operators see only why it failed. */
describe('throttle.query', () => {
  let sc: Scenario | undefined;
  afterEach(async () => {
    await sc?.close();
    sc = undefined;
  });

  async function withSecret(): Promise<Scenario> {
    const s = await scenario({ rows: 100 });
    await s.conn.query(`CREATE TABLE \`${s.src}\`.secrets (pw varchar(64))`);
    await s.conn.query(`INSERT INTO \`${s.src}\`.secrets VALUES (?)`, [SECRET]);
    return s;
  }

  it('ferry plan and ferry local refuse a query whose error would print a row: exit 2, the failure class, no row', async () => {
    sc = await withSecret();
    const before = { src: await tableFingerprint(sc.conn, sc.src, SRC), tgt: await tableFingerprint(sc.conn, sc.tgt, TGT) };
    const leaks = [
      `SELECT ExtractValue(1, CONCAT(0x3a, (SELECT pw FROM \`${sc.src}\`.secrets LIMIT 1)))`,
      `SELECT EXP(~(SELECT * FROM (SELECT pw FROM \`${sc.src}\`.secrets LIMIT 1) x))`,
      `SELECT pw FROM \`${sc.src}\`.secrets`,
    ];
    for (const query of leaks) {
      const file = sc.inputFile({ throttle: { waitSeconds: 1, query } });
      const planned = await runFerry(['plan', 'table-copy', '--input', file, '--state-dir', sc.stateDir, '--json']);
      expect(planned.code, planned.stderr).toBe(2);
      expect(planned.stdout + planned.stderr).not.toContain('hunter2');
      expect(JSON.parse(planned.stdout)).toMatchObject({ wouldRun: false, refused: { field: 'throttle.query', message: expect.stringMatching(/the throttle query failed on "edxapp": /) } });
      const run = await runFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir]);
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).toMatch(/throttle\.query: the throttle query failed on "edxapp": /);
      expect(run.stdout + run.stderr).not.toContain('hunter2');
    }
    expect({ src: await tableFingerprint(sc.conn, sc.src, SRC), tgt: await tableFingerprint(sc.conn, sc.tgt, TGT) }).toEqual(before);
    expect(existsSync(sc.stateDir) ? readdirSync(sc.stateDir) : []).toEqual([]);
  });

  it('refuses a query that sleeps, locks or writes a file before anything runs', async () => {
    sc = await withSecret();
    const leakFile = `/tmp/${sc.src}-leak`;
    for (const [query, why] of [
      ['SELECT SLEEP(5)', /SLEEP/],
      ["SELECT GET_LOCK('ferry', 10)", /GET_LOCK/],
      [`SELECT pw FROM \`${sc.src}\`.secrets INTO OUTFILE '${leakFile}'`, /INTO/],
      ['SELECT 1; SELECT 2', /single SELECT statement: remove the ";"/],
    ] as const) {
      const started = Date.now();
      const planned = await runFerry(['plan', 'table-copy', '--input', sc.inputFile({ throttle: { query } })]);
      expect(planned.code, planned.stderr).toBe(2);
      expect(planned.stderr).toMatch(/throttle\.query: /);
      expect(planned.stderr).toMatch(why);
      expect(Date.now() - started).toBeLessThan(5000);
    }
    expect(existsSync(leakFile)).toBe(false);
  });

  it('a query that fails during the run fails it with the class as the cause, and no row', async () => {
    sc = await withSecret();
    // passes Preflight (0), and returns the secret once the copy has begun
    const gate = await phaseGate(sc.tgt, 'copy');
    const query = `SELECT IF((${gate}) > 0, (SELECT pw FROM \`${sc.src}\`.secrets LIMIT 1), 0)`;
    const run = await runFerry(['local', 'table-copy', '--input', sc.inputFile({ throttle: { waitSeconds: 1, maxThreadsRunning: 200, query } }), '--state-dir', sc.stateDir, '--approve', 'all']);
    expect(run.code, run.stderr).toBe(1);
    expect(run.last).toMatchObject({ status: 'FAILED', cause: expect.stringMatching(/the throttle query failed on "edxapp": it returned no number/) });
    expect(run.stdout + run.stderr).not.toContain('hunter2');
  });

  it('throttle.connection runs the query as a user of its own: what that user may not read is "no permission"', async () => {
    sc = await withSecret();
    const user = `ferry_t_thr_${sc.src.slice(-8)}`.slice(0, 32);
    await sc.conn.query(`CREATE USER '${user}'@'%' IDENTIFIED BY 'throttle-pw'`);
    try {
      // the documented least grant: nothing but what the query reads (information_schema needs no grant)
      const env = { FERRY_MYSQL_THROTTLE: urlAs(user, 'throttle-pw') };
      const allowed = await runFerry(['plan', 'table-copy', '--input', sc.inputFile({ throttle: { connection: 'throttle', query: "SELECT COUNT(*) > 1000 FROM information_schema.PROCESSLIST WHERE COMMAND <> 'Sleep'" } }), '--json'], env);
      expect(allowed.code, allowed.stderr).toBe(0);
      const denied = await runFerry(['plan', 'table-copy', '--input', sc.inputFile({ throttle: { connection: 'throttle', query: `SELECT COUNT(*) FROM \`${sc.src}\`.secrets WHERE pw LIKE 'h%'` } }), '--json'], env);
      expect(denied.code, denied.stderr).toBe(2);
      expect(JSON.parse(denied.stdout)).toMatchObject({ refused: { field: 'throttle.query', message: expect.stringMatching(/the throttle query failed on "throttle": no permission/) } });
      // the same query as the migration's own user is allowed: the grant is the boundary
      const own = await runFerry(['plan', 'table-copy', '--input', sc.inputFile({ throttle: { query: `SELECT COUNT(*) FROM \`${sc.src}\`.secrets WHERE pw LIKE 'h%'` } }), '--json']);
      expect(own.code, own.stderr).toBe(0);
      expect(JSON.parse(own.stdout).warnings.join('\n')).toMatch(/the throttle would hold the copy now: the throttle query says wait/);
    } finally {
      await sc.conn.query(`DROP USER '${user}'@'%'`);
    }
  });
});
