/**
 * What `ferry revert` of an online-alter costs, against the statement a team would otherwise run to
 * go back: the same table (100,000 rows, `BENCH_REVERT_ROWS`) altered by ferry (`MODIFY id bigint
 * unsigned`), four writers at once (single rows, autocommit, no retry, 5 ms pause) from before the
 * run to after the revert; the revert asked for 5 s after the swap. Twice on the same table: with
 * the revert window (ferry's default), then with `revertWindow: false`. Then, in the same run, a copy
 * of the table as it was after the swap goes back by a plain `ALTER TABLE … MODIFY id int` under the
 * same writers. Prints how long each took, and the application's statements, errors, median, p99
 * and max latency per phase.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { admin, makeDatabases } from '../test/helpers/db.ts';
import { cutOverThenRevert, latencyLine, now } from './run-ferry.ts';
import { failures, latency, startAppWriter, studentModuleWriter, type AppOp, type LatencySummary } from '../test/helpers/app-writer.ts';

const ROWS = Number(process.env.BENCH_REVERT_ROWS ?? 100_000);
const WRITERS = 4;
const TABLE = `(id int NOT NULL AUTO_INCREMENT PRIMARY KEY, module_type varchar(32) NOT NULL DEFAULT 'problem',
  module_id varchar(255) NOT NULL, student_id int NOT NULL, state longtext NULL, grade double NULL, created datetime(6) NOT NULL,
  modified datetime(6) NOT NULL, max_grade double NULL, done varchar(8) NOT NULL DEFAULT 'na', course_id varchar(255) NOT NULL,
  UNIQUE KEY student_module (student_id, module_id, course_id), KEY modified (modified))`;

const line = (name: string, l: LatencySummary) => latencyLine(name, l);

const conn = await admin();
const dbs = await makeDatabases(conn, 'rvb');
const db = dbs.names.rvb!;
try {
  await conn.query(`CREATE TABLE \`${db}\`.csm ${TABLE}; SET SESSION max_recursive_iterations = ${ROWS}`);
  await conn.query(`INSERT INTO \`${db}\`.csm (module_id, student_id, state, grade, created, modified, max_grade, course_id)
    WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ${ROWS})
    SELECT CONCAT('block@', n % 500), n DIV 7, '{}', n % 4, '2024-01-01', '2024-01-01', 3, CONCAT('c', n % 7) FROM s`);
  const dir = mkdtempSync(join(tmpdir(), 'rvb-'));
  console.log(`online-alter revert benchmark: ${ROWS.toLocaleString('en-US')} rows, ${WRITERS} writers (single rows, autocommit, 5 ms pause)`);
  let writers = Array.from({ length: WRITERS }, (_, k) => startAppWriter(studentModuleWriter(db, 'csm', ROWS, k, WRITERS), { pauseMillis: 5 }));
  await new Promise((r) => setTimeout(r, 2000));
  const revertSeconds: number[] = [];
  // twice, on the same table: with the revert window (ferry's default), then without it (revertWindow false)
  for (const revertWindow of [true, false]) {
    const migrationId = `rvb-${Date.now()}`;
    writeFileSync(join(dir, 'in.json'), JSON.stringify({ migrationId, table: { connection: 'edxapp', database: db, table: 'csm' }, alter: 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT', revertWindow, cleanup: { mode: 'none' } }));
    const stateDir = join(dir, `st-${revertWindow}`);
    // ferry: the alter, 5 s of the application on the altered table, then the revert
    const started = now();
    const { window, asked, ended, out } = await cutOverThenRevert('online-alter', join(dir, 'in.json'), stateDir, migrationId, async () => {
      // the table as the application has it after the swap, for the plain ALTER below (its reads hold up the writers a moment: not measured)
      if (revertWindow) await conn.query(`CREATE TABLE \`${db}\`.csm2 LIKE \`${db}\`.csm; INSERT INTO \`${db}\`.csm2 SELECT * FROM \`${db}\`.csm`);
    });
    const ops: AppOp[] = writers.flatMap((w) => [...w.ops]);
    const [type] = await conn.query(`SELECT COLUMN_TYPE AS t FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'csm' AND COLUMN_NAME = 'id'`, [db]);
    revertSeconds.push((ended - asked) / 1000);
    console.log(`ferry revert, ${revertWindow ? 'with the revert window' : 'revertWindow false'}: ${((ended - asked) / 1000).toFixed(2)} s from the decision to reverted (id ${(type as { t: string }[])[0]!.t} again), ` +
      `${out.reverted.rowsCompared} rows compared, application failures so far ${failures(ops).length}`);
    console.log(line('before the run', latency(ops, started - 2000, started)));
    console.log(line(revertWindow ? 'altered table, window open' : 'altered table, no window', latency(ops, window, asked)));
    console.log(line('during the revert', latency(ops, asked, ended)));
  }
  const ops: AppOp[] = (await Promise.all(writers.map((w) => w.stop()))).flat();
  if (failures(ops).length) throw new Error(`the application's writes failed: ${failures(ops).length}`);

  // the plain ALTER back, of the same table under the same writers
  // inserting rows of their own: the first writers' inserts are in the copy
  writers = Array.from({ length: WRITERS }, (_, k) => {
    const next = studentModuleWriter(db, 'csm2', ROWS, k, WRITERS);
    return startAppWriter((i) => next(i + 1_000_000), { pauseMillis: 5 });
  });
  await new Promise((r) => setTimeout(r, 2000));
  const alterStarted = now();
  await conn.query(`ALTER TABLE \`${db}\`.csm2 MODIFY id int NOT NULL AUTO_INCREMENT`);
  const alterEnded = now();
  await new Promise((r) => setTimeout(r, 2000));
  const alterOps = (await Promise.all(writers.map((w) => w.stop()))).flat();
  const alterSeconds = (alterEnded - alterStarted) / 1000;
  console.log(`plain ALTER TABLE … MODIFY id int: ${alterSeconds.toFixed(2)} s, application failures ${failures(alterOps).length}`);
  console.log(line('before', latency(alterOps, -Infinity, alterStarted)));
  console.log(line('during the ALTER', latency(alterOps, alterStarted, alterEnded)));
  console.log(line('after', latency(alterOps, alterEnded, Infinity)));
  console.log(`ratio: ferry revert ${revertSeconds.map((x) => (x / alterSeconds).toFixed(2)).join('× (window), ')}× (no window) the plain ALTER's time`);
} finally {
  await dbs.drop();
  await conn.end();
}
