import { describe, expect, it } from 'vitest';
import { parseInput, tableCopyInputSchema } from '../../../lambdas/core/table-copy-input.ts';
import { runThrottleQuery, throttleQueryProblem, throttleQueryStatement, THROTTLE_QUERY_DEADLINE_MILLIS, THROTTLE_QUERY_SECONDS } from '../../../lambdas/core/throttle-query.ts';
import type { SqlConnection } from '../../../lambdas/core/ports/sql.ts';
import { admin } from '../../helpers/db.ts';
import { testDatabase } from '../../helpers/test-database.ts';

/**
 * Ways past the throttle query's guards. The text check looks for refused words between ASCII
 * word boundaries (\b), but the server's lexer ends a number literal where its digits end: in
 * `1.5INTO`, `1e0INTO` or `.5INTO` JavaScript sees one word and the server a number, then INTO.
 */

const base = {
  migrationId: 'm1',
  source: { connection: 'edxapp', database: 'edxapp', table: 'courseware_studentmodulehistory' },
  target: { connection: 'csmh', database: 'edxapp_csmh', table: 'coursewarehistoryextended_studentmodulehistoryextended' },
};

function accepted(query: string): boolean {
  try {
    parseInput(tableCopyInputSchema, { ...base, throttle: { query } });
    return true;
  } catch {
    return false;
  }
}

describe('throttle.query: a refused word right after a number literal', () => {
  it.each([
    "SELECT 1.5INTO OUTFILE '/tmp/ferry-throttle-leak'",
    "SELECT 1e0INTO DUMPFILE '/tmp/ferry-throttle-leak'",
    'SELECT .5INTO @x',
    "SELECT pw FROM app.secrets WHERE 1=1.0INTO OUTFILE '/tmp/ferry-throttle-leak'",
    'SELECT COUNT(*) FROM app.t WHERE id>0.0LOCK IN SHARE MODE',
    'SELECT id FROM app.t WHERE id=1.0FOR UPDATE',
    'SELECT id FROM app.t WHERE 1=1.0PROCEDURE ANALYSE()',
  ])('is refused like the word on its own: %s', (query) => {
    expect(throttleQueryProblem(query)).not.toBeNull();
    expect(accepted(query)).toBe(false);
  });
});

describe('throttle.query bypasses against the real MariaDB', () => {
  const t = testDatabase('thrqby');

  it('a query the input accepts does not write the shared session (INTO @var after a number)', async () => {
    const query = 'SELECT 0.5INTO @ferry_t_throttle_var';
    const conn = await t.sql.connect('edxapp');
    if (throttleQueryProblem(query) === null) {
      // accepted: it runs where the copy's session runs
      expect(await runThrottleQuery(conn, query)).toBeNull();
    }
    const [row] = await conn.query('SELECT @ferry_t_throttle_var AS v');
    expect(row!.v).toBeNull();
  });

  it('a query the input accepts takes no row locks (LOCK IN SHARE MODE after a number)', async () => {
    await t.conn.query(`CREATE TABLE \`${t.db}\`.rows_ (id int PRIMARY KEY, v int)`);
    await t.conn.query(`INSERT INTO \`${t.db}\`.rows_ VALUES (1, 1), (2, 2)`);
    const query = `SELECT COUNT(*) FROM \`${t.db}\`.rows_ WHERE id>0.0LOCK IN SHARE MODE`;
    // an application's transaction holds a row
    const app = await admin();
    try {
      await app.query('START TRANSACTION');
      await app.query(`UPDATE \`${t.db}\`.rows_ SET v = 3 WHERE id = 1`);
      let outcome: string = 'refused by the input';
      if (throttleQueryProblem(query) === null) {
        const conn = await t.sql.connect('edxapp');
        outcome = await runThrottleQuery(conn, query).then((v) => `value ${v}`, (e: Error) => e.message);
      }
      // a plain consistent read would return 2 at once; a locking read waits on the application's row lock
      expect(outcome).not.toMatch(/timed out/);
    } finally {
      await app.query('ROLLBACK');
      await app.end();
    }
  });

  // Work the server does not interrupt: max_statement_time (and KILL) are checked between rows,
  // not inside one function's evaluation. The sizes here keep it to seconds; REPLACE is quadratic
  // (each replacement moves the rest of the string), and with REPEAT('a', 16000000) it runs for
  // tens of minutes, KILL QUERY or not; REGEXP '(a|b)*c' over REPEAT('a', 5000000) ran 65 s.
  it.each([
    ['REPLACE, quadratic', "SELECT LENGTH(REPLACE(REPEAT('a', 120000), 'a', 'bb')) < 0"],
    ['REGEXP, backtracking', "SELECT REPEAT('a', 5000000) REGEXP '(a|b)*c'"],
    ['RPAD', "SELECT LENGTH(RPAD('a', 100000000, 'b')) < 0"],
  ])('refuses what the server cannot stop within its limit (%s), and gives up on the session itself when the server goes on', async (_, query) => {
    expect(throttleQueryProblem(query)).toMatch(/must not build or match long strings/);
  });

  it('gives up on a session whose server does not answer in time, and drops it, whatever the server goes on doing', async () => {
    const real = await t.sql.connectDedicated('edxapp');
    let aborted = false;
    // the server answers what ferry asks of the session, but never the throttle query itself
    const stuck: SqlConnection = Object.create(real, {
      query: { value: (sql: string, params?: readonly unknown[]) => (/ferry_throttle/.test(sql) ? new Promise(() => undefined) : real.query(sql, params)) },
      abort: { value: () => { aborted = true; real.abort?.(); } },
    });
    const started = Date.now();
    const outcome = await runThrottleQuery(stuck, 'SELECT 1').then((v) => `value ${v}`, (e: Error) => e.message);
    const took = Date.now() - started;
    expect({ outcome, aborted, inTime: took < THROTTLE_QUERY_DEADLINE_MILLIS + 1000 }).toEqual({ outcome: expect.stringMatching(/timed out .*its session was closed/), aborted: true, inTime: true });
  });

  it('a large result is not buffered whole: only the first value is read', async () => {
    const conn = await t.sql.connect('edxapp');
    // The sequence engine: 100 million rows for ${THROTTLE_QUERY_SECONDS} s, all of them held in memory by the driver
    const query = `SELECT 0 FROM \`${t.db}\`.seq_1_to_100000000`;
    expect(throttleQueryProblem(query)).toBeNull();
    const before = process.memoryUsage().rss;
    let peak = before;
    const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
    const started = Date.now();
    try {
      expect(await runThrottleQuery(conn, query).catch((e: Error) => e.message)).toBe('0');
    } finally {
      clearInterval(timer);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    expect(peak - before).toBeLessThan(200 * 1024 * 1024);
    expect(Date.now() - started).toBeLessThan(THROTTLE_QUERY_SECONDS * 1000);
  });

  it('a MariaDB that reports another version is still run read-only and timed', async () => {
    // MariaDB may report any version (`version=8.0.36` at startup, a proxy's server_version); the
    // MySQL statement's optimizer hint is a comment to MariaDB 10.11: no time limit, no read-only.
    await t.conn.query(`CREATE TABLE \`${t.db}\`.w (x int)`);
    await t.conn.query(`CREATE FUNCTION \`${t.db}\`.writes() RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO \`${t.db}\`.w VALUES (1); RETURN 0; END`);
    await t.conn.query(`CREATE FUNCTION \`${t.db}\`.slow() RETURNS INT NO SQL BEGIN DO SLEEP(${THROTTLE_QUERY_SECONDS + 4}); RETURN 0; END`);
    const real = await t.sql.connectDedicated('edxapp');
    // a session whose server says it is MySQL 8.0.36
    const lying: SqlConnection = Object.create(real, { query: { value: (sql: string, params?: readonly unknown[]) => (/VERSION\(\)/i.test(sql) ? Promise.resolve([{ v: '8.0.36' }]) : real.query(sql, params)) } });
    expect(await lying.query('SELECT VERSION() AS v')).toEqual([{ v: '8.0.36' }]);
    await runThrottleQuery(lying, `SELECT \`${t.db}\`.writes()`).catch(() => undefined);
    const [[row]] = (await t.conn.query(`SELECT COUNT(*) AS n FROM \`${t.db}\`.w`)) as unknown as [{ n: string }[]];
    expect(String(row!.n)).toBe('0');
    const started = Date.now();
    await expect(runThrottleQuery(lying, `SELECT \`${t.db}\`.slow()`)).rejects.toThrow(/timed out/);
    expect(Date.now() - started).toBeLessThan((THROTTLE_QUERY_SECONDS + 1) * 1000);
    expect(throttleQueryStatement('SELECT 1', 'mysql')).toMatch(/MAX_EXECUTION_TIME/);
    await real.close();
  });
});
