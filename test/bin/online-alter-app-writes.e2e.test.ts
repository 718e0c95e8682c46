import { describe, expect, it } from 'vitest';
import { runFerry, tempDir, writeJson } from '../helpers/cli.ts';
import { admin, makeDatabases } from '../helpers/db.ts';
import { failures, replayStudentModuleWrites, startAppWriter, studentModuleWriter } from '../helpers/app-writer.ts';
import { CSM, tableContent } from '../helpers/alter-scenario.ts';

// FERRY_APP_ROWS / FERRY_APP_RUNS make it the full check (500,000 rows, 10 runs); the suite runs it smaller.
const ROWS = Number(process.env.FERRY_APP_ROWS ?? 150_000);
const RUNS = Number(process.env.FERRY_APP_RUNS ?? 3);

/** courseware_studentmodule as the runbook has it: the unique key and three secondary keys. */
const TABLE_PK = `(id int NOT NULL AUTO_INCREMENT PRIMARY KEY, module_type varchar(32) NOT NULL DEFAULT 'problem',
  module_id varchar(255) NOT NULL, student_id int NOT NULL, state longtext NULL, grade double NULL, created datetime(6) NOT NULL,
  modified datetime(6) NOT NULL, max_grade double NULL, done varchar(8) NOT NULL DEFAULT 'na', course_id varchar(255) NOT NULL,
  UNIQUE KEY student_module (student_id, module_id, course_id), KEY module_type (module_type), KEY module_id (module_id), KEY modified (modified))`;

/** The same table with no primary key: InnoDB stores it by its first unique key on NOT NULL columns, row_id (id). */
const TABLE_UK = TABLE_PK.replace('id int NOT NULL AUTO_INCREMENT PRIMARY KEY,', 'id int NOT NULL AUTO_INCREMENT, UNIQUE KEY row_id (id),');

/**
 * `runs` migrations in a row of a `rows`-row table, each with `writers` application writers (see
 * studentModuleWriter) inserting, updating and deleting single rows with autocommit and no retry
 * through the copy, verification, the swap and the cleanup; none of their writes may fail, and the
 * altered table must equal a reference that received the same writes.
 */
async function underWriters(opts: { prefix: string; rows: number; runs: number; writers: number; pauseMillis: number; cleanup: Record<string, unknown>; table?: string }): Promise<void> {
  const TABLE = opts.table ?? TABLE_PK;
  const conn = await admin();
  const dbs = await makeDatabases(conn, opts.prefix);
  const db = dbs.names[opts.prefix]!;
  try {
    await conn.query(`CREATE TABLE \`${db}\`.pristine ${TABLE}; SET SESSION max_recursive_iterations = ${opts.rows}`);
    await conn.query(`INSERT INTO \`${db}\`.pristine (module_id, student_id, state, grade, created, modified, max_grade, course_id)
      WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ${opts.rows})
      SELECT CONCAT('block-v1:edX+DemoX+type@problem+block@', n % 500), n DIV 7, CONCAT('{"attempts": ', n % 5, '}'), n % 4,
             TIMESTAMP('2024-01-01') + INTERVAL n SECOND, TIMESTAMP('2024-01-01') + INTERVAL n SECOND, 3, CONCAT('course-v1:edX+DemoX+', n % 7) FROM s`);
    const dir = tempDir();
    for (let run = 1; run <= opts.runs; run++) {
      await conn.query(`DROP TABLE IF EXISTS \`${db}\`.${CSM}, \`${db}\`.reference, \`${db}\`._ferry_checkpoints;
        CREATE TABLE \`${db}\`.${CSM} ${TABLE}; INSERT INTO \`${db}\`.${CSM} SELECT * FROM \`${db}\`.pristine;
        CREATE TABLE \`${db}\`.reference ${TABLE}; INSERT INTO \`${db}\`.reference SELECT * FROM \`${db}\`.pristine`);
      const input = writeJson(dir, `run-${run}.json`, {
        migrationId: `${opts.prefix}-${run}`,
        table: { connection: 'edxapp', database: db, table: CSM },
        alter: 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT',
        throttle: { maxThreadsRunning: 200, waitSeconds: 1 },
        cleanup: opts.cleanup,
      });
      const writers = Array.from({ length: opts.writers }, (_, k) => startAppWriter(studentModuleWriter(db, CSM, opts.rows, k, opts.writers), { pauseMillis: opts.pauseMillis }));
      const result = await runFerry(['local', 'online-alter', '--input', input, '--state-dir', `${dir}/state`, '--approve', 'all']);
      const ops = (await Promise.all(writers.map((w) => w.stop()))).flat();
      expect(result.code, result.stderr).toBe(0);
      expect(failures(ops), `run ${run} of ${opts.runs}: the application's writes that failed`).toEqual([]);
      expect(ops.length).toBeGreaterThan(100);
      await replayStudentModuleWrites(conn, db, 'reference', ops);
      const [altered, reference] = [await tableContent(conn, db, CSM), await tableContent(conn, db, 'reference')];
      expect({ rows: altered.rows, checksum: altered.checksum }, `run ${run}`).toEqual({ rows: reference.rows, checksum: reference.checksum });
      const [keys] = await conn.query(`SELECT INDEX_NAME AS k FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 ORDER BY 1`, [db, CSM]);
      const [kept] = await conn.query(`SELECT INDEX_NAME AS k FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'reference' AND NON_UNIQUE = 0 ORDER BY 1`, [db]);
      expect(keys, 'the altered table keeps the unique keys it had, and gains none').toEqual(kept);
    }
  } finally {
    await dbs.drop();
    await conn.end();
  }
}

describe('ferry local online-alter under an application writing single rows', () => {
  it(`fails none of the application's writes in ${RUNS} runs, and every write is in the altered table`, () =>
    underWriters({ prefix: 'appw', rows: ROWS, runs: RUNS, writers: 1, pauseMillis: 10, cleanup: { mode: 'trickle-delete', batchRows: 20000 } }), 600_000);

  // Several writers with almost no pause: writes meet ferry's copy, its repairs of ranges a write
  // moved under the verification, and the swap, at once.
  it(`fails none of the writes of 4 writers at once in ${RUNS} runs, and every write is in the altered table`, () =>
    underWriters({ prefix: 'appw4', rows: 20_000, runs: RUNS, writers: 4, pauseMillis: 1, cleanup: { mode: 'drop' } }), 600_000);

  // Writers that never pause meet the RENAME half-way (a write that opened the table finds the
  // shadow locked, lets go and opens both again): then the altered table's revert-window triggers
  // must use no table the write did not prepare.
  it('swaps under 8 writers that never pause, failing none of their writes in 5 runs', () =>
    underWriters({ prefix: 'appsw', rows: 3000, runs: 5, writers: 8, pauseMillis: 0, cleanup: { mode: 'drop' } }), 600_000);

  // No primary key: ferry reads, captures, repairs and swaps by the unique key the table is stored by.
  it('alters a table keyed by a unique key instead of a primary key, failing none of 2 writers\' writes', () =>
    underWriters({ prefix: 'appuk', rows: 20_000, runs: 1, writers: 2, pauseMillis: 2, cleanup: { mode: 'trickle-delete', batchRows: 5000 }, table: TABLE_UK }), 600_000);
});
