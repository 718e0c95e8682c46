import { expect } from 'vitest';
import { failures, replayStudentModuleWrites, startAppWriter, studentModuleWriter } from './app-writer.ts';
import { CSM, tableContent } from './alter-scenario.ts';
import { runFerry, tempDir, writeJson } from './cli.ts';
import { admin, makeDatabases } from './db.ts';

/** courseware_studentmodule as the runbook has it: the unique key and three secondary keys. */
export const TABLE_PK = `(id int NOT NULL AUTO_INCREMENT PRIMARY KEY, module_type varchar(32) NOT NULL DEFAULT 'problem',
  module_id varchar(255) NOT NULL, student_id int NOT NULL, state longtext NULL, grade double NULL, created datetime(6) NOT NULL,
  modified datetime(6) NOT NULL, max_grade double NULL, done varchar(8) NOT NULL DEFAULT 'na', course_id varchar(255) NOT NULL,
  UNIQUE KEY student_module (student_id, module_id, course_id), KEY module_type (module_type), KEY module_id (module_id), KEY modified (modified))`;

/** The same table with no primary key: InnoDB stores it by its first unique key on NOT NULL columns, row_id (id). */
export const TABLE_UK = TABLE_PK.replace('id int NOT NULL AUTO_INCREMENT PRIMARY KEY,', 'id int NOT NULL AUTO_INCREMENT, UNIQUE KEY row_id (id),');

/**
 * `runs` migrations in a row of a `rows`-row table, each with `writers` application writers (see
 * studentModuleWriter) inserting, updating and deleting single rows with autocommit and no retry
 * through the copy, verification, the swap and the cleanup; none of their writes may fail, and the
 * altered table must equal a reference that received the same writes.
 */
export async function underWriters(opts: { prefix: string; rows: number; runs: number; writers: number; pauseMillis: number; cleanup: Record<string, unknown>; table?: string }): Promise<void> {
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
