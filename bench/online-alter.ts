/**
 * `npm run bench` (second part): ferry's online-alter against pt-online-schema-change, side by side
 * on the same server and the same data: `courseware_studentmodule` with its secondary indexes,
 * `id` widened to BIGINT UNSIGNED. pt-osc runs with its defaults (which drop the old table); ferry
 * with cleanup `drop`, and then with `trickle-delete`, whose purge of the old table is reported as
 * rows/s. Installs percona-toolkit from Debian's packages when it is missing. BENCH_ROWS overrides
 * the row count (default 1,000,000). BENCH_KEY=composite keys the table by its
 * `(student_id, module_id, course_id)` as its primary key instead (`id` keeps a key of its own, not
 * unique): both tools copy by that composite key, ferry in chunks of rows.
 */
import '../bin/cli/polyfill.ts';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { runLocal } from '../bin/cli/local-runner.ts';
import { resolveMysqlUrl } from '../lambdas/adapters/mysql2.ts';
import { ensurePtOsc } from './pt-osc.ts';

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const DB = 'ferry_bench_alter';
const T = 'courseware_studentmodule';
const ALTER = 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT';
const url = resolveMysqlUrl('bench').url;

const COMPOSITE = process.env.BENCH_KEY === 'composite';
const KEYS = COMPOSITE
  ? 'PRIMARY KEY (student_id, module_id, course_id), KEY id (id)'
  : 'PRIMARY KEY (id), UNIQUE KEY student_module (student_id, module_id, course_id)';
const TABLE = `(id int NOT NULL AUTO_INCREMENT, module_type varchar(32) NOT NULL DEFAULT 'problem',
  module_id varchar(255) NOT NULL, student_id int NOT NULL, state longtext NULL, grade double NULL, created datetime(6) NOT NULL,
  modified datetime(6) NOT NULL, max_grade double NULL, done varchar(8) NOT NULL DEFAULT 'na', course_id varchar(255) NOT NULL,
  ${KEYS}, KEY module_type (module_type), KEY module_id (module_id),
  KEY grade (grade), KEY created (created), KEY modified (modified))`;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited ${code}`))));
  });
}

async function main() {
  ensurePtOsc();
  const conn = await mysql.createConnection({ uri: url, multipleStatements: true });
  process.stderr.write(`bench: seeding ${ROWS.toLocaleString('en-US')} courseware_studentmodule rows…\n`);
  await conn.query(`DROP DATABASE IF EXISTS ${DB}; CREATE DATABASE ${DB}; CREATE TABLE ${DB}.pristine ${TABLE};
    SET SESSION max_recursive_iterations = ${ROWS};
    INSERT INTO ${DB}.pristine (module_id, student_id, state, grade, created, modified, max_grade, course_id)
      WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ${ROWS})
      SELECT CONCAT('block-v1:edX+DemoX+type@problem+block@', n % 500), n DIV 7, CONCAT('{"attempts": ', n % 5, ', "done": true}'), n % 4,
             TIMESTAMP('2024-01-01') + INTERVAL n SECOND, TIMESTAMP('2024-01-01') + INTERVAL n SECOND, 3, CONCAT('course-v1:edX+DemoX+', n % 7) FROM s;`);
  const fresh = async () => {
    await conn.query(`DROP TABLE IF EXISTS ${DB}.${T}, ${DB}._${T}_new, ${DB}._${T}_old, ${DB}._ferry_checkpoints; CREATE TABLE ${DB}.${T} ${TABLE}; INSERT INTO ${DB}.${T} SELECT * FROM ${DB}.pristine`);
  };
  const idType = async () => String(((await conn.query(`SELECT COLUMN_TYPE AS t FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = 'id'`, [DB, T])) as unknown as [{ t: string }[]])[0][0]!.t);

  const u = new URL(url);
  await fresh();
  const pt = await timed(() =>
    run('pt-online-schema-change', ['--alter', ALTER, '--execute', '--quiet', `D=${DB},t=${T},h=${u.hostname},P=${u.port || 3306},u=${decodeURIComponent(u.username || 'root')}${u.password ? `,p=${decodeURIComponent(u.password)}` : ''}`]),
  );
  if (!(await idType()).startsWith('bigint')) throw new Error('pt-online-schema-change did not alter the table');
  process.stderr.write(`bench: pt-online-schema-change: ${pt.toFixed(2)} s\n`);

  const ferry = async (mode: 'drop' | 'trickle-delete') => {
    await fresh();
    let output: Record<string, unknown> = {};
    const wall = await timed(async () => {
      const result = await runLocal({
        machine: 'online-alter',
        stateDir: mkdtempSync(join(tmpdir(), 'ferry-bench-')),
        approve: 'all',
        input: { migrationId: `bench-alter-${Date.now()}`, table: { connection: 'edxapp', database: DB, table: T }, alter: ALTER, throttle: { maxThreadsRunning: 100000 }, cleanup: { mode } },
        // BENCH_VERBOSE=1 prints what the run says as it goes
        say: (line) => void (process.env.BENCH_VERBOSE && process.stderr.write(`${line}\n`)),
        onProgress: (p) => void (process.env.BENCH_VERBOSE && process.stderr.write(`${new Date().toISOString().slice(11, 23)} [${p.phase}] ${p.note}\n`)),
      });
      if (result.status !== 'SUCCEEDED') throw new Error(`ferry (${mode}): ${result.error}: ${result.cause}`);
      output = result.output as Record<string, unknown>;
    });
    if (!(await idType()).startsWith('bigint')) throw new Error('ferry did not alter the table');
    const phases = output.phases as Record<string, string>;
    const at = (p: string) => Date.parse(phases[p]!);
    const phase = { copy: (at('verify') - at('copy')) / 1000, verify: (at('cutover-approval') - at('verify')) / 1000, cleanup: (at('done') - at('cleanup')) / 1000 };
    process.stderr.write(`bench: ferry, cleanup ${mode}: ${wall.toFixed(2)} s (copy ${phase.copy.toFixed(2)} s, verify ${phase.verify.toFixed(2)} s, cleanup ${phase.cleanup.toFixed(2)} s)\n`);
    return { wall, ...phase, deleted: Number(output.rowsDeleted ?? 0) };
  };
  const drop = await ferry('drop');
  const trickle = await ferry('trickle-delete');
  await conn.query(`DROP DATABASE ${DB}`);
  await conn.end();

  const line = (label: string, seconds: number, base: number) => `${label.padEnd(52)} ${seconds.toFixed(2).padStart(7)} s   ${(seconds / base).toFixed(2)}× pt-online-schema-change's time`;
  process.stdout.write(
    [
      `online-alter benchmark: ${ROWS.toLocaleString('en-US')} courseware_studentmodule rows, ${COMPOSITE ? 'keyed by (student_id, module_id, course_id)' : 'keyed by id'}, 6 secondary indexes, "${ALTER}", unthrottled, MariaDB at ${u.hostname}:${u.port || 3306}`,
      line('pt-online-schema-change 3 (defaults: drops the old table)', pt, pt),
      line('ferry, cleanup drop, whole run', drop.wall, pt),
      `  (copy ${drop.copy.toFixed(2)} s, verify ${drop.verify.toFixed(2)} s)`,
      line('ferry, cleanup trickle-delete, whole run', trickle.wall, pt),
      `  (trickle-delete of the old table: ${trickle.deleted.toLocaleString('en-US')} rows in ${trickle.cleanup.toFixed(2)} s, ${Math.round(trickle.deleted / Math.max(trickle.cleanup, 0.001)).toLocaleString('en-US')} rows/s)`,
    ].join('\n') + '\n',
  );
}

await main();
