import { describe, expect, it } from 'vitest';
import { DatabaseError, InvalidInput, TransientError } from '../../../lambdas/core/errors.ts';
import { onlineAlterInputSchema } from '../../../lambdas/core/online-alter-input.ts';
import { parseInput, tableCopyInputSchema } from '../../../lambdas/core/table-copy-input.ts';
import { runThrottleQuery, throttleQueryStatement, THROTTLE_QUERY_SECONDS } from '../../../lambdas/core/throttle-query.ts';
import { checkThrottleQuery } from '../../../lambdas/core/tables/preflight-checks.ts';
import { inputJsonSchema } from '../../../infra/console-inputs.ts';
import { testDatabase } from '../../helpers/test-database.ts';

const base = {
  migrationId: 'm1',
  source: { connection: 'edxapp', database: 'edxapp', table: 'courseware_studentmodulehistory' },
  target: { connection: 'csmh', database: 'edxapp_csmh', table: 'coursewarehistoryextended_studentmodulehistoryextended' },
};
const withQuery = (query: string) => ({ ...base, throttle: { query } });

function refusal(query: string): InvalidInput {
  try {
    parseInput(tableCopyInputSchema, withQuery(query));
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidInput);
    return err as InvalidInput;
  }
  throw new Error(`accepted: ${query}`);
}

describe('throttle.query in the input', () => {
  it.each([
    'SELECT 1',
    "select count(*) from information_schema.PROCESSLIST where COMMAND <> 'Sleep'",
    'SELECT MOD(FLOOR(UNIX_TIMESTAMP(NOW(3)) * 10), 2)',
    "SELECT COUNT(*) FROM `db`._ferry_checkpoints WHERE phase = 'catch-up'",
    "SELECT COUNT(*) FROM performance_schema.metadata_locks WHERE OBJECT_NAME = 'sleep; get_lock() into -- #'",
    'SELECT on_off FROM `src`.throttle_switch',
    "SELECT 'it''s' = \"it's\"",
    'SELECT @@global.read_only',
  ])('accepts a plain SELECT: %s', (query) => {
    expect(parseInput(tableCopyInputSchema, withQuery(query)).throttle.query).toBe(query);
  });

  it.each([
    ['SELECT 1; DROP TABLE x', /single SELECT statement: remove the ";"/],
    ['SELECT 1;', /single SELECT statement: remove the ";"/],
    ['DELETE FROM x', /single SELECT/],
    ['WITH a AS (SELECT 1) SELECT * FROM a', /single SELECT/],
    ['(SELECT 1)', /single SELECT/],
    ['SHOW STATUS', /single SELECT/],
    ['SELECT SLEEP(10)', /SLEEP/],
    ['SELECT sleep (10)', /SLEEP/],
    ['SELECT `sleep`(10)', /SLEEP/],
    ['SELECT BENCHMARK(1000000000, MD5(1))', /BENCHMARK/],
    ["SELECT GET_LOCK('x', 10)", /GET_LOCK/],
    ["SELECT RELEASE_LOCK('x')", /RELEASE_LOCK/],
    ['SELECT RELEASE_ALL_LOCKS()', /RELEASE_ALL_LOCKS/],
    ["SELECT IS_USED_LOCK('x')", /IS_USED_LOCK/],
    ["SELECT IS_FREE_LOCK('x')", /IS_FREE_LOCK/],
    ["SELECT MASTER_POS_WAIT('bin.000001', 4)", /MASTER_POS_WAIT/],
    ["SELECT MASTER_GTID_WAIT('0-1-1')", /MASTER_GTID_WAIT/],
    ["SELECT SOURCE_POS_WAIT('bin.000001', 4)", /SOURCE_POS_WAIT/],
    ["SELECT WAIT_FOR_EXECUTED_GTID_SET('x')", /WAIT_FOR_EXECUTED_GTID_SET/],
    ["SELECT WAIT_UNTIL_SQL_THREAD_AFTER_GTIDS('x')", /WAIT_UNTIL_SQL_THREAD_AFTER_GTIDS/],
    ["SELECT LOAD_FILE('/etc/passwd')", /LOAD_FILE/],
    ["SELECT 1 INTO OUTFILE '/tmp/x'", /INTO/],
    ["SELECT 1 INTO DUMPFILE '/tmp/x'", /INTO/],
    ['SELECT 1 INTO @x', /INTO/],
    ['SELECT id FROM t FOR UPDATE', /FOR UPDATE/],
    ['SELECT id FROM t FOR  SHARE', /FOR SHARE/],
    ['SELECT id FROM t LOCK IN SHARE MODE', /LOCK IN SHARE MODE/],
    ['SELECT id FROM t PROCEDURE ANALYSE()', /PROCEDURE/],
    ['SELECT 1 /*! , SLEEP(5) */', /comment/],
    ['SELECT 1 -- x', /comment/],
    ['SELECT 1 # x', /comment/],
    ["SELECT 'unterminated", /quote/],
    ["SELECT 'a\\', SLEEP(1), '", /backslash/],
  ])('refuses %s, naming the field and the fix', (query, message) => {
    const err = refusal(query);
    expect(err.field).toBe('throttle.query');
    expect(err.message).toMatch(message);
  });

  it('takes the connection the query runs on by name, never a URL', () => {
    expect(parseInput(tableCopyInputSchema, { ...base, throttle: { connection: 'throttle', query: 'SELECT 1' } }).throttle.connection).toBe('throttle');
    expect(() => parseInput(tableCopyInputSchema, { ...base, throttle: { connection: 'mysql://u:p@h/', query: 'SELECT 1' } })).toThrow(/throttle\.connection: .*never a URL or credentials/);
  });

  it("the console's JSON schema takes SELECT in any case (its patterns have no i flag)", () => {
    const pattern = (inputJsonSchema('table-copy') as { properties: { throttle: { properties: { query: { pattern: string } } } } }).properties.throttle.properties.query.pattern;
    for (const query of ['SELECT 1', 'select 1', ' Select 1']) expect(new RegExp(pattern, 'u').test(query), query).toBe(true);
    expect(new RegExp(pattern, 'u').test('DELETE FROM t')).toBe(false);
  });

  it('is checked the same way in online-alter input', () => {
    const raw = { migrationId: 'm1', table: { connection: 'edxapp', database: 'edxapp', table: 'courseware_studentmodule' }, alter: 'MODIFY id bigint unsigned', throttle: { query: 'SELECT SLEEP(1)' } };
    expect(() => parseInput(onlineAlterInputSchema, raw)).toThrow(/throttle\.query: .*SLEEP/);
  });
});

describe('throttleQueryStatement', () => {
  it('runs read-only with a statement time limit on MariaDB, one row of it read', () => {
    expect(throttleQueryStatement('SELECT 1', 'mariadb')).toBe(`SET STATEMENT max_statement_time=${THROTTLE_QUERY_SECONDS}, tx_read_only=1 FOR SELECT * FROM (SELECT 1) AS ferry_throttle LIMIT 1`);
  });
  it('puts the time limit in an optimizer hint on MySQL, one row of it read', () => {
    expect(throttleQueryStatement('  select 1', 'mysql')).toBe(`SELECT /*+ MAX_EXECUTION_TIME(${THROTTLE_QUERY_SECONDS * 1000}) */ * FROM (select 1) AS ferry_throttle LIMIT 1`);
  });
});

describe('runThrottleQuery (real MariaDB)', () => {
  const t = testDatabase('thrq');
  const SECRET = 'hunter2-s3cret-value';

  async function failure(query: string): Promise<Error> {
    const conn = await t.sql.connect('edxapp');
    try {
      await runThrottleQuery(conn, query);
    } catch (err) {
      return err as Error;
    }
    throw new Error(`succeeded: ${query}`);
  }

  it('returns the first value, and null for no row', async () => {
    const conn = await t.sql.connect('edxapp');
    expect(await runThrottleQuery(conn, 'SELECT 3')).toBe('3');
    expect(await runThrottleQuery(conn, 'SELECT 1 FROM DUAL WHERE 0')).toBeNull();
    expect(await runThrottleQuery(conn, 'SELECT NULL')).toBeNull();
  });

  it('names the failure class and never the database text', async () => {
    await t.conn.query(`CREATE TABLE \`${t.db}\`.secrets (pw varchar(64))`);
    await t.conn.query(`INSERT INTO \`${t.db}\`.secrets VALUES (?)`, [SECRET]);
    const leaks = [
      `SELECT ExtractValue(1, CONCAT(0x3a, (SELECT pw FROM \`${t.db}\`.secrets LIMIT 1)))`,
      `SELECT EXP(~(SELECT * FROM (SELECT pw FROM \`${t.db}\`.secrets LIMIT 1) x))`,
      `SELECT pw FROM \`${t.db}\`.secrets`,
      `SELECT CONCAT('1', pw) FROM \`${t.db}\`.secrets`,
    ];
    for (const q of leaks) {
      const err = await failure(q);
      expect(err.message).toMatch(/^the throttle query failed on "edxapp": /);
      expect(err.message).not.toContain(SECRET);
      expect(err.message).not.toContain('hunter');
      expect(JSON.stringify({ ...err, cause: String((err as { cause?: unknown }).cause) })).not.toContain('hunter');
    }
    expect((await failure(`SELECT pw FROM \`${t.db}\`.secrets`)).message).toMatch(/returned no number/);
  });

  it.each([
    ['SELECT FROM', /syntax error/, DatabaseError],
    ['SELECT nosuch FROM DUAL', /does not exist/, DatabaseError],
    ['SELECT 1 FROM nosuchdb_ferry.t', /does not exist/, DatabaseError],
  ])('%s: %s', async (query, message, kind) => {
    const err = await failure(query);
    expect(err).toBeInstanceOf(kind);
    expect(err.message).toMatch(message);
  });

  it('runs read-only: a function that writes is refused as a write', async () => {
    await t.conn.query(`CREATE TABLE \`${t.db}\`.w (x int)`);
    await t.conn.query(`CREATE FUNCTION \`${t.db}\`.writes() RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO \`${t.db}\`.w VALUES (1); RETURN 1; END`);
    const err = await failure(`SELECT \`${t.db}\`.writes()`);
    expect(err.message).toMatch(/tried to write/);
    const [[row]] = (await t.conn.query(`SELECT COUNT(*) AS n FROM \`${t.db}\`.w`)) as unknown as [{ n: string }[]];
    expect(String(row!.n)).toBe('0');
  });

  it(`stops after ${THROTTLE_QUERY_SECONDS} s and says it timed out (retryable)`, async () => {
    // a stored function may sleep where the text cannot see it; the statement time limit stops it
    await t.conn.query(`CREATE FUNCTION \`${t.db}\`.slow() RETURNS INT NO SQL BEGIN DO SLEEP(30); RETURN 1; END`);
    const started = Date.now();
    const err = await failure(`SELECT \`${t.db}\`.slow()`);
    expect(Date.now() - started).toBeLessThan((THROTTLE_QUERY_SECONDS + 3) * 1000);
    expect(err).toBeInstanceOf(TransientError);
    expect(err.message).toMatch(/timed out/);
  });

  it('leaves the shared session as it was', async () => {
    const conn = await t.sql.connect('edxapp');
    await runThrottleQuery(conn, 'SELECT 0');
    const [row] = await conn.query('SELECT @@tx_read_only AS ro, @@max_statement_time AS mst');
    expect(row).toEqual({ ro: '0', mst: expect.stringMatching(/^0(\.0+)?$/) });
  });

  it('Preflight refuses a failing query with the class, naming throttle.query', async () => {
    const conn = await t.sql.connect('edxapp');
    const err = await checkThrottleQuery(conn, `SELECT ExtractValue(1, CONCAT(0x3a, (SELECT pw FROM \`${t.db}\`.secrets LIMIT 1)))`).catch((e: unknown) => e as InvalidInput);
    expect(err).toBeInstanceOf(InvalidInput);
    expect((err as InvalidInput).field).toBe('throttle.query');
    expect((err as InvalidInput).message).toMatch(/the throttle query failed on "edxapp": /);
    expect((err as InvalidInput).message).not.toContain('hunter');
  });
});
