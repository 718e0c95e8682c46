/**
 * `npm run bench` (first part): ferry's table-copy against the baselines an operator would
 * otherwise use, measured in the same run, the ferry runs timed from outside as a user runs them
 * (`node bin/ferry.js local table-copy … --approve all`, compiled, quietSeconds 1, cleanup none):
 *   - one server:  a single `INSERT INTO target SELECT * FROM source`  vs  ferry's whole run, with
 *     the initial copy in 1, 2 and 4 partitions
 *   - ids spread over 1 … 2^31−1 in a few dense clusters: the chunks it takes against a dense table
 *   - two servers (a second MariaDB started here on another port): `mysqldump | mysql`  vs  ferry,
 *     in 1, 2 and 4 partitions, and with every other id unused
 * The table has the edX history shape with a ~300-byte `state`; idOffset "0" (nothing writes the old
 * table here, so no 10-second measurement of its insert rate). BENCH_GAPS_ONLY=1 runs only dense and
 * every-other-id ids on one server (for a big table's separate run). Prints times, rows/s and ratios,
 * and per 1,000,000 rows what the run would be billed for on AWS (state transitions, Lambda
 * invocations, Lambda-seconds) with the process's peak memory, then projects them to bigger tables.
 * BENCH_KEY=uuid runs only a table keyed by a CHAR(36) UUID (MariaDB's UUID(), in no order the
 * rows were written in) beside the same rows keyed by a dense integer id, one server, each against
 * its single statement. BENCH_ROWS overrides the row count (default 1,000,000).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { resolveMysqlUrl } from '../lambdas/adapters/mysql2.ts';
import { startSecondServer } from '../test/helpers/second-server.ts';
import { build } from '../bin/build.mjs';
import { AWS_BUDGET_SECONDS, AWS_PRICE, awsDollars } from '../lambdas/core/plan.ts';

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const SRC_DB = 'ferry_bench_src';
const TGT_DB = 'ferry_bench_tgt';
const T = 'courseware_studentmodulehistory';
const X = 'coursewarehistoryextended_studentmodulehistoryextended';
const FERRY = fileURLToPath(new URL('../bin/ferry.js', import.meta.url));
const url = resolveMysqlUrl('bench').url;

/** `uuid`: the table keyed by a CHAR(36) UUID (BENCH_KEY=uuid), else by an AUTO_INCREMENT id of this type. */
const table = (idType: string) => `(
  ${idType === 'uuid' ? 'id char(36) CHARACTER SET ascii NOT NULL PRIMARY KEY' : `id ${idType} NOT NULL AUTO_INCREMENT PRIMARY KEY`}, version varchar(255) NULL, created datetime(6) NOT NULL,
  state longtext NULL, grade double NULL, max_grade double NULL, student_module_id int NOT NULL,
  KEY created (created), KEY student_module_id (student_module_id), KEY version (version))`;

const ROW = `CONCAT('v', n % 5), TIMESTAMP('2024-01-01') + INTERVAL n SECOND, REPEAT(CHAR(97 + n % 26), 300), n % 10, 10, n % 50000`;

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

interface Usage {
  transitions: number;
  invocations: number;
  /** Of which the copy loops' (CopyChunks, or CopyPartition): the part that grows with the table. */
  copyInvocations: number;
  taskSeconds: number;
  peakMb: number;
}

interface FerryRun {
  wall: number;
  /** From the process's start to Preflight's checkpoint (start-up and Preflight's checks). */
  startup: number;
  /** From the checkpoint to the catch-up: the copy, which starts while idOffset is measured. */
  copy: number;
  catchUp: number;
  verify: number;
  /** The sweep after the cut-over flags: at least `quietSeconds` of quiet after the flip. */
  sweep: number;
  rangesVerified: number;
  partitions: number;
  /** The whole run as `ferry plan` estimated it beforehand (seconds), or null. */
  planned: number | null;
  usage: Usage;
}

/** Runs `ferry local table-copy` as a user would, and reads what it printed. */
async function ferryRun(label: string, env: NodeJS.ProcessEnv, target: { database: string; table: string }, partitions = 1): Promise<FerryRun> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-'));
  const inputFile = join(dir, 'input.json');
  writeFileSync(inputFile, JSON.stringify({
    migrationId: `bench-${Date.now()}`,
    source: { connection: 'edxapp', database: SRC_DB, table: T },
    target: { connection: 'csmh', ...target },
    // nothing writes the old table here: no 10-second measurement of its insert rate
    idOffset: '0',
    catchUp: { quietSeconds: 1 },
    throttle: { maxThreadsRunning: 100000 },
    cleanup: { mode: 'none' },
    partitions,
  }));
  // What `ferry plan` expected, from its timed sample, before the run: compared with the copy below.
  const planned = await new Promise<string>((resolve) => {
    const child = spawn(process.execPath, [FERRY, 'plan', 'table-copy', '--input', inputFile, '--json', '--state-dir', join(dir, 'state')], { env: { ...process.env, ...env, CI: 'true' }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('close', () => resolve(out));
  });
  const plan = JSON.parse(planned) as { estimate: { seconds: number | null } };
  const started = Date.now();
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [FERRY, 'local', 'table-copy', '--input', inputFile, '--approve', 'all', '--state-dir', join(dir, 'state')], {
      env: { ...process.env, ...env, CI: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (c) => resolve({ code: c, stdout: out, stderr: err }));
  });
  const wall = (Date.now() - started) / 1000;
  rmSync(dir, { recursive: true, force: true });
  if (code !== 0) throw new Error(`${label}: ferry exited ${code}:\n${stderr.slice(-3000)}`);
  const output = JSON.parse(stdout.trim().split('\n').pop()!) as { phases: Record<string, string>; rangesVerified: number; rowsCopied: string; rowsDelivered: string };
  if (output.rowsDelivered !== String(ROWS)) throw new Error(`${label}: ferry delivered ${output.rowsDelivered} rows, not ${ROWS}`);
  const u = /usage: (\d+) state transitions, (\d+) task invocations \(([^)]*)\), ([\d.]+) task-seconds, at most (\d+) at once, peak memory (\d+) MB/.exec(stderr);
  if (!u) throw new Error(`${label}: ferry printed no usage line:\n${stderr.slice(-2000)}`);
  const p = output.phases;
  const at = (phase: string) => Date.parse(p[phase]!);
  const run: FerryRun = {
    wall,
    startup: (at('prepare') - started) / 1000,
    copy: (at('catch-up') - at('prepare')) / 1000,
    catchUp: (at('verify') - at('catch-up')) / 1000,
    verify: (at('cutover-approval') - at('verify')) / 1000,
    sweep: (at('cleanup-approval') - at('sweep')) / 1000,
    rangesVerified: output.rangesVerified,
    partitions,
    planned: plan.estimate.seconds,
    usage: { transitions: Number(u[1]), invocations: Number(u[2]), copyInvocations: Number(/Copy(?:Chunks|Partition) (\d+)/.exec(u[3]!)?.[1] ?? 0), taskSeconds: Number(u[4]), peakMb: Number(u[6]) },
  };
  process.stderr.write(`bench: ${label}: ${JSON.stringify(run)}\n`);
  return run;
}

async function main() {
  await build();
  const conn = await mysql.createConnection({ uri: url, multipleStatements: true });
  const count = async (c: mysql.Connection, db: string) => String(((await c.query(`SELECT COUNT(*) AS n FROM ${db}.${X}`)) as unknown as [{ n: number }[]])[0][0]!.n);
  let keyType: 'uuid' | null = null;
  const resetTarget = (c: mysql.Connection = conn) => c.query(`CREATE DATABASE IF NOT EXISTS ${TGT_DB}; DROP TABLE IF EXISTS ${TGT_DB}.${X}; DROP TABLE IF EXISTS ${TGT_DB}._ferry_checkpoints; DROP TABLE IF EXISTS ${TGT_DB}._ferry_ledger; DROP TABLE IF EXISTS ${TGT_DB}._ferry_key_ledger; DROP TABLE IF EXISTS ${TGT_DB}._ferry_partitions; CREATE TABLE ${TGT_DB}.${X} ${table(keyType ?? 'bigint unsigned')}`);
  const seed = async (ids: string) => {
    await conn.query(`DROP DATABASE IF EXISTS ${SRC_DB}; CREATE DATABASE ${SRC_DB}; CREATE TABLE ${SRC_DB}.${T} ${table(keyType ?? 'int')}`);
    // in slices of 500,000: one recursive query of millions of rows needs a temporary table as big
    const slice = 500_000;
    for (let from = 0; from < ROWS; from += slice) {
      const upTo = Math.min(slice, ROWS - from);
      await conn.query(`SET SESSION max_recursive_iterations = ${upTo};
        INSERT INTO ${SRC_DB}.${T} (id, version, created, state, grade, max_grade, student_module_id)
          WITH RECURSIVE seq0(m) AS (SELECT 1 UNION ALL SELECT m + 1 FROM seq0 WHERE m < ${upTo}), seq(n) AS (SELECT m + ${from} FROM seq0)
          SELECT ${ids}, ${ROW} FROM seq;`);
    }
  };
  const insertSelect = async () => {
    await resetTarget();
    const s = await timed(() => conn.query(`INSERT INTO ${TGT_DB}.${X} SELECT * FROM ${SRC_DB}.${T}`));
    process.stderr.write(`bench: single INSERT … SELECT: ${s.toFixed(2)} s\n`);
    return s;
  };
  const startup = async () => {
    const times: number[] = [];
    for (let i = 0; i < 3; i++) times.push(await timed(() => sh(`${JSON.stringify(process.execPath)} ${JSON.stringify(FERRY)} --help`)));
    return Math.min(...times);
  };

  process.stderr.write(`bench: seeding ${ROWS.toLocaleString('en-US')} rows…\n`);
  await conn.query(`DROP DATABASE IF EXISTS ${TGT_DB}; CREATE DATABASE ${TGT_DB}`);

  if (process.env.BENCH_KEY === 'uuid') {
    const same = { FERRY_MYSQL_EDXAPP: url, FERRY_MYSQL_CSMH: url };
    keyType = 'uuid';
    await seed('UUID()');
    const uuidBase = await insertSelect();
    await resetTarget();
    const uuid = await ferryRun('ferry, one server, CHAR(36) UUID key', same, { database: TGT_DB, table: X });
    keyType = null;
    await seed('n');
    const denseBase = await insertSelect();
    await resetTarget();
    const dense = await ferryRun('ferry, one server, integer id', same, { database: TGT_DB, table: X });
    await conn.query(`DROP DATABASE ${SRC_DB}; DROP DATABASE ${TGT_DB}`);
    await conn.end();
    process.stdout.write([
      `table-copy benchmark: ${ROWS.toLocaleString('en-US')} rows, ~300-byte state, unthrottled, quietSeconds 1, cleanup none, one server`,
      `CHAR(36) UUID key: single INSERT … SELECT ${uuidBase.toFixed(2)} s, ferry ${uuid.wall.toFixed(2)} s = ${(uuid.wall / uuidBase).toFixed(2)}×, copy ${uuid.copy.toFixed(2)} s, catch-up ${uuid.catchUp.toFixed(2)} s, sweep ${uuid.sweep.toFixed(2)} s, ${uuid.rangesVerified} ranges, peak memory ${uuid.usage.peakMb} MB`,
      `dense integer id: single INSERT … SELECT ${denseBase.toFixed(2)} s, ferry ${dense.wall.toFixed(2)} s = ${(dense.wall / denseBase).toFixed(2)}×, copy ${dense.copy.toFixed(2)} s, catch-up ${dense.catchUp.toFixed(2)} s, sweep ${dense.sweep.toFixed(2)} s, ${dense.rangesVerified} ranges, peak memory ${dense.usage.peakMb} MB`,
    ].join('\n') + '\n');
    return;
  }

  // Ids with gaps the way real tables have them: every other id unused (auto_increment_increment = 2,
  // or the ids upserts and rollbacks burn), against the single statement on the same ids.
  await seed('n * 2');
  const gappyBase = await insertSelect();
  await resetTarget();
  const gappy = await ferryRun('ferry, one server, every other id', { FERRY_MYSQL_EDXAPP: url, FERRY_MYSQL_CSMH: url }, { database: TGT_DB, table: X });
  const gapsLine = `every other id unused: single INSERT … SELECT ${gappyBase.toFixed(2)} s, ferry ${gappy.wall.toFixed(2)} s = ${(gappy.wall / gappyBase).toFixed(2)}×, copy ${gappy.copy.toFixed(2)} s, sweep ${gappy.sweep.toFixed(2)} s, peak memory ${gappy.usage.peakMb} MB`;
  if (process.env.BENCH_GAPS_ONLY) {
    // Dense ids beside it, and nothing else (a big table's separate run).
    await seed('n');
    const denseBase = await insertSelect();
    await resetTarget();
    const denseOnly = await ferryRun('ferry, one server', { FERRY_MYSQL_EDXAPP: url, FERRY_MYSQL_CSMH: url }, { database: TGT_DB, table: X });
    await conn.query(`DROP DATABASE ${SRC_DB}; DROP DATABASE ${TGT_DB}`);
    await conn.end();
    process.stdout.write([
      `table-copy benchmark: ${ROWS.toLocaleString('en-US')} rows, ~300-byte state, unthrottled, quietSeconds 1, cleanup none, one server`,
      `dense ids: single INSERT … SELECT ${denseBase.toFixed(2)} s, ferry ${denseOnly.wall.toFixed(2)} s = ${(denseOnly.wall / denseBase).toFixed(2)}×, copy ${denseOnly.copy.toFixed(2)} s, sweep ${denseOnly.sweep.toFixed(2)} s, peak memory ${denseOnly.usage.peakMb} MB`,
      gapsLine,
    ].join('\n') + '\n');
    return;
  }
  await seed('n');
  const same = { FERRY_MYSQL_EDXAPP: url, FERRY_MYSQL_CSMH: url };
  const target = { database: TGT_DB, table: X };

  // One server, dense ids: the single statement before and after ferry, the better of the two.
  const base1 = await insertSelect();
  await resetTarget();
  const dense = await ferryRun('ferry, one server', same, target);
  const base2 = await insertSelect();
  const baseline = Math.min(base1, base2);
  const parted: FerryRun[] = [];
  for (const partitions of [2, 4]) {
    await resetTarget();
    parted.push(await ferryRun(`ferry, one server, ${partitions} partitions`, same, target, partitions));
  }
  const cli = await startup();

  // Ids in four dense clusters spread over 1 … 2^31−1.
  const cluster = Math.ceil(ROWS / 4);
  const starts = [1, 500_000_000, 1_200_000_000, 2 ** 31 - 1 - cluster];
  await seed(`ELT(1 + (n - 1) DIV ${cluster}, ${starts.map((s) => `${s} + (n - 1) % ${cluster}`).join(', ')})`);
  const sparseBase = await insertSelect();
  await resetTarget();
  const sparse = await ferryRun('ferry, one server, ids spread to 2^31-1', same, target);
  await seed('n');

  // Two servers: a second MariaDB of its own, started here.
  process.stderr.write('bench: starting a second MariaDB…\n');
  const second = await startSecondServer();
  let dump: number;
  let streamed: FerryRun;
  let gappyDump: number;
  let gappyStreamed: FerryRun;
  const streamedParted: FerryRun[] = [];
  try {
    const other = await second.connect();
    await other.query(`CREATE DATABASE ${TGT_DB}`);
    const u = new URL(url);
    const from = `-h${u.hostname} -P${u.port || 3306} -u${decodeURIComponent(u.username || 'root')}`;
    const to = `-h127.0.0.1 -P${second.port} -uroot`;
    dump = await timed(() => sh(`mysqldump ${from} --single-transaction --no-create-info ${SRC_DB} ${T} | sed 's/\`${T}\`/\`${X}\`/g' | { echo 'CREATE TABLE ${X} ${table('bigint unsigned').replace(/\n/g, ' ')};'; cat; } | mysql ${to} ${TGT_DB}`));
    if ((await count(other, TGT_DB)) !== String(ROWS)) throw new Error('mysqldump | mysql copied the wrong number of rows');
    process.stderr.write(`bench: mysqldump | mysql: ${dump.toFixed(2)} s\n`);
    await resetTarget(other);
    streamed = await ferryRun('ferry, two servers', { FERRY_MYSQL_EDXAPP: url, FERRY_MYSQL_CSMH: second.url }, target);
    for (const partitions of [2, 4]) {
      await resetTarget(other);
      streamedParted.push(await ferryRun(`ferry, two servers, ${partitions} partitions`, { FERRY_MYSQL_EDXAPP: url, FERRY_MYSQL_CSMH: second.url }, target, partitions));
    }
    // every other id unused, between the two servers
    await seed('n * 2');
    await other.query(`DROP DATABASE ${TGT_DB}; CREATE DATABASE ${TGT_DB}`);
    gappyDump = await timed(() => sh(`mysqldump ${from} --single-transaction --no-create-info ${SRC_DB} ${T} | sed 's/\`${T}\`/\`${X}\`/g' | { echo 'CREATE TABLE ${X} ${table('bigint unsigned').replace(/\n/g, ' ')};'; cat; } | mysql ${to} ${TGT_DB}`));
    if ((await count(other, TGT_DB)) !== String(ROWS)) throw new Error('mysqldump | mysql copied the wrong number of rows');
    await resetTarget(other);
    gappyStreamed = await ferryRun('ferry, two servers, every other id', { FERRY_MYSQL_EDXAPP: url, FERRY_MYSQL_CSMH: second.url }, target);
    await other.end();
  } finally {
    await second.stop();
  }

  await conn.query(`DROP DATABASE ${SRC_DB}; DROP DATABASE ${TGT_DB}`);
  await conn.end();

  const s = (x: number) => `${x.toFixed(2).padStart(6)} s`;
  const rate = (x: number) => `${Math.round(ROWS / x).toLocaleString('en-US').padStart(9)} rows/s`;
  const line = (label: string, x: number, base?: number) => `  ${label.padEnd(46)} ${s(x)} ${rate(x)}${base ? `   ${(x / base).toFixed(2)}×` : ''}`;
  const perMillion = (n: number) => (n * 1_000_000) / ROWS;
  const u = dense.usage;
  /**
   * A bigger table on AWS: the copy takes proportionally longer and runs in Lambda invocations of
   * at most 300 s (three state transitions each: the Task, its Choice, its Wait); every other task
   * runs about as often as here. Lambda-seconds grow with the rows.
   */
  const atScale = (rows: number, run: FerryRun) => {
    const k = rows / ROWS;
    const u = run.usage;
    // each partition's loop runs for the whole copy, side by side with the others
    const copyCalls = run.partitions * Math.max(1, Math.ceil((run.copy * k) / AWS_BUDGET_SECONDS));
    const transitions = u.transitions - 3 * u.copyInvocations + 3 * copyCalls;
    const invocations = u.invocations - u.copyInvocations + copyCalls;
    const lambdaSeconds = u.taskSeconds * k;
    const dollars = awsDollars({ transitions, invocations, lambdaSeconds });
    const seconds = run.wall * k;
    const time = seconds < 5400 ? `${Math.round(seconds / 60)} min` : `${(seconds / 3600).toFixed(1)} h`;
    return `  ${rows.toLocaleString('en-US').padStart(13)} rows, ${run.partitions} partition${run.partitions > 1 ? 's' : ' '}   ${time.padStart(8)}   ${transitions.toLocaleString('en-US').padStart(6)} transitions   ${invocations.toLocaleString('en-US').padStart(5)} invocations   ${Math.round(lambdaSeconds).toLocaleString('en-US').padStart(7)} Lambda-s   $${dollars.toFixed(2)}`;
  };
  const report = [
    `table-copy benchmark: ${ROWS.toLocaleString('en-US')} rows, ~300-byte state, unthrottled, quietSeconds 1, cleanup none`,
    'one server (ratios against the single statement):',
    line('single INSERT … SELECT (better of 2)', baseline, baseline),
    line('ferry whole run (from the shell)', dense.wall, baseline),
    line('  of which start-up and Preflight', dense.startup, baseline),
    line('  copy, verification trailing it', dense.copy, baseline),
    line('  catch-up', dense.catchUp, baseline),
    line('  verify (what was left)', dense.verify, baseline),
    line('  sweep after the cut-over flags', dense.sweep, baseline),
    ...parted.flatMap((r) => [line(`ferry whole run, ${r.partitions} partitions`, r.wall, baseline), line(`  copy, ${r.partitions} partitions (at most ${r.partitions} at once)`, r.copy, baseline)]),
    `  ferry --help, process start to exit:          ${s(cli)}`,
    `ferry plan's estimate beforehand (a timed sample read, scaled; writes come on top): ${dense.planned === null ? 'none' : `${dense.planned.toFixed(2)} s`} against the whole run's ${dense.wall.toFixed(2)} s${dense.planned ? ` (the run took ${(dense.wall / dense.planned).toFixed(2)}× the estimate)` : ''}; two servers ${streamed.planned === null ? 'none' : `${streamed.planned.toFixed(2)} s`} against ${streamed.wall.toFixed(2)} s`,
    `ids in 4 clusters over 1 … 2^31−1: single INSERT … SELECT ${sparseBase.toFixed(2)} s, ferry ${sparse.wall.toFixed(2)} s = ${(sparse.wall / sparseBase).toFixed(2)}×, ${sparse.rangesVerified} chunks (dense: ${dense.rangesVerified}), sweep ${sparse.sweep.toFixed(2)} s, peak memory ${sparse.usage.peakMb} MB`,
    gapsLine,
    'two servers (ratios against mysqldump | mysql):',
    line('mysqldump | mysql', dump, dump),
    line('ferry whole run (from the shell)', streamed.wall, dump),
    line('  copy, verification trailing it', streamed.copy, dump),
    ...streamedParted.flatMap((r) => [line(`ferry whole run, ${r.partitions} partitions`, r.wall, dump), line(`  copy, ${r.partitions} partitions`, r.copy, dump)]),
    `  every other id unused: mysqldump | mysql ${gappyDump.toFixed(2)} s, ferry ${gappyStreamed.wall.toFixed(2)} s = ${(gappyStreamed.wall / gappyDump).toFixed(2)}×, copy ${gappyStreamed.copy.toFixed(2)} s, sweep ${gappyStreamed.sweep.toFixed(2)} s, peak memory ${gappyStreamed.usage.peakMb} MB`,
    `per 1,000,000 rows, one server: ${Math.round(perMillion(u.transitions))} state transitions, ${Math.round(perMillion(u.invocations))} Lambda invocations, ${perMillion(u.taskSeconds).toFixed(1)} Lambda-seconds; peak memory ${u.peakMb} MB (sparse run ${sparse.usage.peakMb} MB, two servers ${streamed.usage.peakMb} MB)`,
    `projected from this run (same speed, unthrottled; Lambda at ${AWS_PRICE.lambdaGb} GB, us-east-1 2024 list prices):`,
    ...[10_000_000, 100_000_000, 2 ** 31].flatMap((rows) => [atScale(rows, dense), atScale(rows, parted.find((r) => r.partitions === 4)!)]),
    'the same with every other id unused (rows, not ids, counted):',
    ...[10_000_000, 100_000_000, 2 ** 31].map((rows) => atScale(rows, gappy)),
  ];
  process.stdout.write(report.join('\n') + '\n');
}

await main();
