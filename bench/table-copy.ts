/**
 * `npm run bench`: ferry's table-copy against the baselines an operator would otherwise use,
 * measured in the same run on the same server:
 *   - one server:  a single `INSERT INTO target SELECT * FROM source`  vs  ferry's chunked, checkpointed copy
 *   - two servers: `mysqldump | mysql`                                  vs  ferry's streamed batches
 * The table has the edX history shape with a ~300-byte `state`. Prints rows/s and time ratios.
 * BENCH_ROWS overrides the row count (default 1,000,000).
 */
import '../bin/cli/polyfill.ts';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { runLocal } from '../bin/cli/local-runner.ts';
import { resolveMysqlUrl } from '../lambdas/adapters/mysql2.ts';

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const SRC_DB = 'ferry_bench_src';
const TGT_DB = 'ferry_bench_tgt';
const T = 'courseware_studentmodulehistory';
const X = 'coursewarehistoryextended_studentmodulehistoryextended';

const url = resolveMysqlUrl('bench').url;
const otherHost = (() => {
  const u = new URL(url);
  u.hostname = u.hostname === '127.0.0.1' ? 'localhost' : '127.0.0.1';
  return u.toString();
})();

const table = (idType: string) => `(
  id ${idType} NOT NULL AUTO_INCREMENT PRIMARY KEY, version varchar(255) NULL, created datetime(6) NOT NULL,
  state longtext NULL, grade double NULL, max_grade double NULL, student_module_id int NOT NULL,
  KEY created (created), KEY student_module_id (student_module_id), KEY version (version))`;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function sh(command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', command], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited ${code}`))));
  });
}

async function main() {
  const conn = await mysql.createConnection({ uri: url, multipleStatements: true });
  const resetTarget = () => conn.query(`DROP TABLE IF EXISTS ${TGT_DB}.${X}; CREATE TABLE ${TGT_DB}.${X} ${table('bigint unsigned')}`);
  const targetRows = async () => String(((await conn.query(`SELECT COUNT(*) AS n FROM ${TGT_DB}.${X}`)) as unknown as [{ n: number }[]])[0][0]!.n);

  process.stderr.write(`bench: seeding ${ROWS.toLocaleString('en-US')} rows…\n`);
  await conn.query(`DROP DATABASE IF EXISTS ${SRC_DB}; DROP DATABASE IF EXISTS ${TGT_DB}; CREATE DATABASE ${SRC_DB}; CREATE DATABASE ${TGT_DB};
    CREATE TABLE ${SRC_DB}.${T} ${table('int')};
    SET SESSION max_recursive_iterations = ${ROWS};
    INSERT INTO ${SRC_DB}.${T} (version, created, state, grade, max_grade, student_module_id)
      WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ${ROWS})
      SELECT CONCAT('v', n % 5), TIMESTAMP('2024-01-01') + INTERVAL n SECOND, REPEAT(CHAR(97 + n % 26), 300), n % 10, 10, n % 50000 FROM seq;`);

  const results: { name: string; seconds: number }[] = [];
  const record = (name: string, seconds: number) => {
    results.push({ name, seconds });
    process.stderr.write(`bench: ${name}: ${seconds.toFixed(2)} s\n`);
  };

  const ferry = async (name: string, env: NodeJS.ProcessEnv) => {
    await resetTarget();
    await conn.query(`DROP TABLE IF EXISTS ${TGT_DB}._ferry_checkpoints`);
    const migrationId = `bench-${Date.now()}`;
    let output: Record<string, unknown> = {};
    const wall = await timed(async () => {
      const result = await runLocal({
        machine: 'table-copy',
        stateDir: mkdtempSync(join(tmpdir(), 'ferry-bench-')),
        approve: 'all',
        env,
        input: {
          migrationId,
          source: { connection: 'edxapp', database: SRC_DB, table: T },
          target: { connection: 'csmh', database: TGT_DB, table: X },
          catchUp: { quietSeconds: 0 },
          throttle: { maxThreadsRunning: 100000 },
          cleanup: { mode: 'none' },
        },
        say: () => undefined,
      });
      if (result.status !== 'SUCCEEDED') throw new Error(`${name}: ${result.error}: ${result.cause}`);
      output = result.output as Record<string, unknown>;
    });
    const phases = output.phases as Record<string, string>;
    const copySeconds = (Date.parse(phases['catch-up']!) - Date.parse(phases.copy!)) / 1000;
    if ((await targetRows()) !== String(ROWS)) throw new Error(`${name}: target has ${await targetRows()} rows`);
    record(`${name}, copy phase`, copySeconds);
    record(`${name}, whole run (preflight, copy, catch-up, verify)`, wall);
    return copySeconds;
  };

  // One server.
  await resetTarget();
  const insertSelect1 = await timed(() => conn.query(`INSERT INTO ${TGT_DB}.${X} SELECT * FROM ${SRC_DB}.${T}`));
  record('single INSERT … SELECT (1st)', insertSelect1);
  const ferrySame = await ferry('ferry, one server', { FERRY_MYSQL_EDXAPP: url, FERRY_MYSQL_CSMH: url });
  await resetTarget();
  const insertSelect2 = await timed(() => conn.query(`INSERT INTO ${TGT_DB}.${X} SELECT * FROM ${SRC_DB}.${T}`));
  record('single INSERT … SELECT (2nd)', insertSelect2);

  // Two servers (the same MariaDB reached under two host names, so ferry streams rows through itself).
  const u = new URL(url);
  const cli = `-h${u.hostname} -P${u.port || 3306} -u${decodeURIComponent(u.username || 'root')}`;
  await conn.query(`DROP TABLE IF EXISTS ${TGT_DB}.${X}`);
  const dump = await timed(() => sh(`mysqldump ${cli} --single-transaction --no-create-info ${SRC_DB} ${T} | sed 's/\`${T}\`/\`${X}\`/g' | { echo 'CREATE TABLE ${X} ${table('bigint unsigned').replace(/\n/g, ' ')};'; cat; } | mysql ${cli} ${TGT_DB}`));
  if ((await targetRows()) !== String(ROWS)) throw new Error('mysqldump | mysql copied the wrong number of rows');
  record('mysqldump | mysql', dump);
  const ferryStreamed = await ferry('ferry, two servers (streamed)', { FERRY_MYSQL_EDXAPP: url, FERRY_MYSQL_CSMH: otherHost });

  await conn.query(`DROP DATABASE ${SRC_DB}; DROP DATABASE ${TGT_DB}`);
  await conn.end();

  const baseline = Math.min(insertSelect1, insertSelect2);
  const line = (label: string, seconds: number, base: number) =>
    `${label.padEnd(44)} ${seconds.toFixed(2).padStart(7)} s ${Math.round(ROWS / seconds).toLocaleString('en-US').padStart(10)} rows/s   ${(seconds / base).toFixed(2)}× the baseline's time`;
  const report = [
    `table-copy benchmark: ${ROWS.toLocaleString('en-US')} rows, ~300-byte state, unthrottled, MariaDB at ${u.hostname}:${u.port || 3306}`,
    line('single INSERT … SELECT (best of 2)', baseline, baseline),
    line('ferry copy phase, one server', ferrySame, baseline),
    line('mysqldump | mysql', dump, dump),
    line('ferry copy phase, two servers (streamed)', ferryStreamed, dump),
    ...results.filter((r) => r.name.includes('whole run')).map((r) => `  (${r.name}: ${r.seconds.toFixed(2)} s)`),
  ];
  process.stdout.write(report.join('\n') + '\n');
}

await main();
