/**
 * What moving a table's own triggers at the swap costs the application: online-alter of the same
 * 100,000-row table twice in one run, once without triggers of its own and once with three (AFTER
 * INSERT, UPDATE and DELETE, each writing an audit table), four writers at once (single rows,
 * autocommit, no retry, 5 ms pause), statements, errors, median, p99 and max latency per phase,
 * and how long the swap step took. `BENCH_TRIGGER_ROWS` changes the row count.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { admin, makeDatabases } from '../test/helpers/db.ts';
import { ferry, latencyLine } from './run-ferry.ts';
import { latency, startAppWriter, studentModuleWriter, failures } from '../test/helpers/app-writer.ts';

const ROWS = Number(process.env.BENCH_TRIGGER_ROWS ?? 100_000);
const WRITERS = 4;
const TABLE = `(id int NOT NULL AUTO_INCREMENT PRIMARY KEY, module_type varchar(32) NOT NULL DEFAULT 'problem',
  module_id varchar(255) NOT NULL, student_id int NOT NULL, state longtext NULL, grade double NULL, created datetime(6) NOT NULL,
  modified datetime(6) NOT NULL, max_grade double NULL, done varchar(8) NOT NULL DEFAULT 'na', course_id varchar(255) NOT NULL,
  UNIQUE KEY student_module (student_id, module_id, course_id), KEY modified (modified))`;

async function one(withTriggers: boolean): Promise<{ swapMillis: number; swapMax: number | null }> {
  const conn = await admin();
  const dbs = await makeDatabases(conn, 'lat');
  const db = dbs.names.lat!;
  try {
    await conn.query(`CREATE TABLE \`${db}\`.csm ${TABLE}; SET SESSION max_recursive_iterations = ${ROWS}`);
    await conn.query(`INSERT INTO \`${db}\`.csm (module_id, student_id, state, grade, created, modified, max_grade, course_id)
      WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ${ROWS})
      SELECT CONCAT('block@', n % 500), n DIV 7, '{}', n % 4, '2024-01-01', '2024-01-01', 3, CONCAT('c', n % 7) FROM s`);
    if (withTriggers) {
      await conn.query(`CREATE TABLE \`${db}\`.audit (seq bigint AUTO_INCREMENT PRIMARY KEY, row_id bigint, what varchar(20))`);
      await conn.query(`CREATE TRIGGER \`${db}\`.ai AFTER INSERT ON \`${db}\`.csm FOR EACH ROW INSERT INTO \`${db}\`.audit (row_id, what) VALUES (NEW.id, 'insert')`);
      await conn.query(`CREATE TRIGGER \`${db}\`.au AFTER UPDATE ON \`${db}\`.csm FOR EACH ROW INSERT INTO \`${db}\`.audit (row_id, what) VALUES (NEW.id, 'update')`);
      await conn.query(`CREATE TRIGGER \`${db}\`.ad AFTER DELETE ON \`${db}\`.csm FOR EACH ROW INSERT INTO \`${db}\`.audit (row_id, what) VALUES (OLD.id, 'delete')`);
    }
    const dir = mkdtempSync(join(tmpdir(), 'lat-'));
    writeFileSync(join(dir, 'in.json'), JSON.stringify({ migrationId: `lat-${withTriggers}`, table: { connection: 'edxapp', database: db, table: 'csm' }, alter: 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT', cleanup: { mode: 'none' } }));
    const writers = Array.from({ length: WRITERS }, (_, k) => startAppWriter(studentModuleWriter(db, 'csm', ROWS, k, WRITERS), { pauseMillis: 5 }));
    await new Promise((r) => setTimeout(r, 2000));
    const started = Date.now();
    const run = await ferry(['local', 'online-alter', '--input', join(dir, 'in.json'), '--approve', 'all', '--state-dir', join(dir, 'st')]);
    await new Promise((r) => setTimeout(r, 2000));
    const ops = (await Promise.all(writers.map((w) => w.stop()))).flat();
    const out = JSON.parse(run.stdout.trim().split('\n').pop()!);
    const p = out.phases as Record<string, string>;
    const at = (k: string) => Date.parse(p[k]!);
    const rows = [
      ['before', latency(ops, -Infinity, started)],
      ['copy+verify', latency(ops, at('copy'), at('cutover-approval'))],
      ['swap', latency(ops, at('cutover-approval'), at('cleanup-approval'))],
      ['after', latency(ops, at('cleanup-approval'), Infinity)],
    ] as const;
    console.log(`online-alter, ${withTriggers ? 'with 3 triggers of its own' : 'no triggers of its own'}: exit ${run.status}, failures ${failures(ops).length}, swap ${(at('cleanup-approval') - at('cutover-approval'))} ms`);
    for (const [name, l] of rows) console.log(latencyLine(name, l, 12));
    return { swapMillis: at('cleanup-approval') - at('cutover-approval'), swapMax: rows[2][1].maxMillis };
  } finally {
    await dbs.drop();
    await conn.end();
  }
}
const plain = await one(false);
const moved = await one(true);
console.log(
  `moving the triggers: the swap step ${moved.swapMillis} ms against ${plain.swapMillis} ms (${(moved.swapMillis / plain.swapMillis).toFixed(2)}×); ` +
    `the slowest write during it ${moved.swapMax?.toFixed(1)} ms against ${plain.swapMax?.toFixed(1)} ms`,
);
