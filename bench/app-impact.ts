/**
 * `npm run bench` (fourth part): what the application feels while a migration runs. An application
 * writes single rows with autocommit and no retry (one statement, then 10 ms of pause, as the
 * end-to-end tests' writer), and each statement's latency and error are recorded and split by the
 * migration's phase:
 *   - online-alter: `courseware_studentmodule` (the unique key and three secondary keys), id widened
 *     to BIGINT UNSIGNED, inserts / updates / deletes of random rows; pt-online-schema-change and
 *     ferry, one after the other on the same data, each with a quiet stretch before it;
 *   - table-copy: the edX history table; the application inserts into the old table during the
 *     copy and, from the cut-over flags on, inserts, updates and deletes its rows in the new table;
 *     against the same application with no migration running.
 * Prints, per phase: statements, errors, median, p99 and max latency. BENCH_APP_ROWS overrides the
 * row count (default 500,000); BENCH_APP_TRANSACTIONS=N makes online-alter's application N writers
 * in transactions of three statements (COMMIT counted as a statement).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { resolveMysqlUrl } from '../lambdas/adapters/mysql2.ts';
import { build } from '../bin/build.mjs';
import { latency, startAppWriter, startTransactionWriter, studentModuleWriter, studentModuleWrites, type AppOp, type AppStatement, type LatencySummary } from '../test/helpers/app-writer.ts';
import { ensurePtOsc } from './pt-osc.ts';

const ROWS = Number(process.env.BENCH_APP_ROWS ?? 500_000);
const DB = 'ferry_bench_app';
const CSM = 'courseware_studentmodule';
const ALTER = 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT';
const FERRY = fileURLToPath(new URL('../bin/ferry.js', import.meta.url));
const url = resolveMysqlUrl('bench').url;
/** Quiet stretches before and after each migration, in which the application's latency is its own. */
const QUIET_MILLIS = 3000;

const CSM_TABLE = `(id int NOT NULL AUTO_INCREMENT PRIMARY KEY, module_type varchar(32) NOT NULL DEFAULT 'problem',
  module_id varchar(255) NOT NULL, student_id int NOT NULL, state longtext NULL, grade double NULL, created datetime(6) NOT NULL,
  modified datetime(6) NOT NULL, max_grade double NULL, done varchar(8) NOT NULL DEFAULT 'na', course_id varchar(255) NOT NULL,
  UNIQUE KEY student_module (student_id, module_id, course_id), KEY module_type (module_type), KEY module_id (module_id), KEY modified (modified))`;

const HISTORY_TABLE = (idType: string) => `(
  id ${idType} NOT NULL AUTO_INCREMENT PRIMARY KEY, version varchar(255) NULL, created datetime(6) NOT NULL,
  state longtext NULL, grade double NULL, max_grade double NULL, student_module_id int NOT NULL,
  KEY created (created), KEY student_module_id (student_module_id), KEY version (version))`;

/** BENCH_APP_TRANSACTIONS=N: online-alter's application is N writers sending transactions of three statements (update, insert, delete) instead of single rows. */
const TRANSACTION_WRITERS = Number(process.env.BENCH_APP_TRANSACTIONS ?? 0);

/** online-alter's application: the single-row writer, or TRANSACTION_WRITERS writers in transactions, each on rows of its own. */
function startApplication(writes: (i: number) => AppStatement): { stop(): Promise<AppOp[]> } {
  if (!TRANSACTION_WRITERS) return startAppWriter(writes, { url });
  const writers = Array.from({ length: TRANSACTION_WRITERS }, (_, k) => {
    const next = studentModuleWriter(DB, CSM, ROWS, k, TRANSACTION_WRITERS);
    return startTransactionWriter((i) => [next(3 * i + 1), next(3 * i), next(3 * i + 2)], { url });
  });
  return { stop: async () => (await Promise.all(writers.map((w) => w.stop()))).flat().sort((a, b) => a.startedAt - b.startedAt) };
}

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs a command, calling `onLine` with each line it prints (stdout and stderr) as it arrives; resolves with stdout. */
function run(command: string, args: string[], onLine: (line: string, at: number) => void = () => undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const split = (buffer: { rest: string }, chunk: string) => {
      const lines = (buffer.rest + chunk).split('\n');
      buffer.rest = lines.pop()!;
      for (const line of lines) onLine(line, now());
    };
    const out = { rest: '' };
    const err = { rest: '' };
    child.stdout.on('data', (d) => { stdout += d; split(out, String(d)); });
    child.stderr.on('data', (d) => { stderr += d; split(err, String(d)); });
    child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${command} exited ${code}:\n${stderr.slice(-3000)}`))));
  });
}

interface Window {
  readonly label: string;
  readonly from: number;
  readonly to: number;
}

interface Measured {
  readonly tool: string;
  readonly windows: readonly Window[];
  readonly ops: readonly AppOp[];
}

function row(w: Window, s: LatencySummary): string {
  const ms = (v: number | null) => (v === null ? '—' : v < 10 ? v.toFixed(1) : v.toFixed(0));
  const seconds = Number.isFinite(w.from) && Number.isFinite(w.to) ? `${((w.to - w.from) / 1000).toFixed(2)} s` : '';
  return `  ${w.label.padEnd(34)} ${seconds.padStart(9)} ${String(s.statements).padStart(6)} ${String(s.errors).padStart(6)} ${ms(s.medianMillis).padStart(8)} ${ms(s.p99Millis).padStart(8)} ${ms(s.maxMillis).padStart(8)}`;
}

function report(m: Measured): string[] {
  const lines = [`${m.tool}`, `  ${'phase (writes that started in it)'.padEnd(34)} ${'lasted'.padStart(9)} ${'writes'.padStart(6)} ${'errors'.padStart(6)} ${'median'.padStart(8)} ${'p99'.padStart(8)} ${'max'.padStart(8)}  (ms)`];
  for (const w of m.windows) lines.push(row(w, latency(m.ops, w.from, w.to)));
  const errors = new Map<string, number>();
  for (const o of m.ops) if (o.error) errors.set(`${o.error.message} (${o.error.errno})`, (errors.get(`${o.error.message} (${o.error.errno})`) ?? 0) + 1);
  for (const [message, n] of errors) lines.push(`  errors: ${n} × ${message}`);
  return lines;
}

/** Phase windows from ferry's checkpoint times (`phases` in its output): [start of `from`, start of the next phase that is there). */
function ferryWindows(phases: Record<string, string>, order: [string, string][], end: number): Window[] {
  const at = (p: string) => (phases[p] ? Date.parse(phases[p]!) : null);
  const windows: Window[] = [];
  for (let i = 0; i < order.length; i++) {
    const from = at(order[i]![0]);
    if (from === null) continue;
    const next = order.slice(i + 1).map(([p]) => at(p)).find((t) => t !== null) ?? end;
    windows.push({ label: order[i]![1], from, to: next });
  }
  return windows;
}

async function onlineAlter(conn: mysql.Connection): Promise<Measured[]> {
  process.stderr.write(`bench: seeding ${ROWS.toLocaleString('en-US')} courseware_studentmodule rows…\n`);
  await conn.query(`DROP DATABASE IF EXISTS ${DB}; CREATE DATABASE ${DB}; CREATE TABLE ${DB}.pristine ${CSM_TABLE};
    SET SESSION max_recursive_iterations = ${ROWS};
    INSERT INTO ${DB}.pristine (module_id, student_id, state, grade, created, modified, max_grade, course_id)
      WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ${ROWS})
      SELECT CONCAT('block-v1:edX+DemoX+type@problem+block@', n % 500), n DIV 7, CONCAT('{"attempts": ', n % 5, ', "done": true}'), n % 4,
             TIMESTAMP('2024-01-01') + INTERVAL n SECOND, TIMESTAMP('2024-01-01') + INTERVAL n SECOND, 3, CONCAT('course-v1:edX+DemoX+', n % 7) FROM s`);
  const fresh = () => conn.query(`DROP TABLE IF EXISTS ${DB}.${CSM}, ${DB}._${CSM}_new, ${DB}._${CSM}_old, ${DB}._ferry_checkpoints; CREATE TABLE ${DB}.${CSM} ${CSM_TABLE}; INSERT INTO ${DB}.${CSM} SELECT * FROM ${DB}.pristine`);
  const results: Measured[] = [];
  const writes = studentModuleWrites(DB, CSM, ROWS);

  if (!process.env.BENCH_SKIP_PT) {
  // pt-online-schema-change, its phases read from the lines it prints, timed as they arrive
  await fresh();
  const u = new URL(url);
  const marks: Record<string, number> = {};
  const writer = startApplication(writes);
  await sleep(QUIET_MILLIS);
  const ptStart = now();
  await run('pt-online-schema-change', ['--alter', ALTER, '--execute', `D=${DB},t=${CSM},h=${u.hostname},P=${u.port || 3306},u=${decodeURIComponent(u.username || 'root')}${u.password ? `,p=${decodeURIComponent(u.password)}` : ''}`], (line, at) => {
    for (const [mark, pattern] of [['triggers', /Creating triggers/], ['copy', /Copying approximately/], ['copied', /Copied rows OK/], ['swap', /Swapping tables/], ['swapped', /Swapped original and new tables OK/], ['drop', /Dropping old table/], ['dropped', /Dropped old table/], ['dropTriggers', /Dropping triggers/], ['end', /Dropped triggers OK/]] as const) {
      if (pattern.test(line) && marks[mark] === undefined) marks[mark] = at;
    }
  });
  const ptEnd = now();
  await sleep(QUIET_MILLIS);
  results.push({
    tool: 'pt-online-schema-change 3 (defaults: copy in chunks of 0.5 s, drops the old table)',
    ops: await writer.stop(),
    windows: [
      { label: 'before', from: -Infinity, to: ptStart },
      { label: 'triggers created', from: marks.triggers!, to: marks.copy! },
      { label: 'copy', from: marks.copy!, to: marks.copied! },
      { label: 'cut-over (RENAME)', from: marks.swap!, to: marks.swapped! },
      { label: 'drop of the old table', from: marks.drop!, to: marks.dropped! },
      { label: 'triggers dropped', from: marks.dropTriggers!, to: marks.end! },
      { label: 'whole run', from: ptStart, to: ptEnd },
      { label: 'after', from: ptEnd, to: Infinity },
    ],
  });
  }

  await fresh();
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-app-'));
  const input = join(dir, 'alter.json');
  writeFileSync(input, JSON.stringify({ migrationId: `bench-app-alter-${Date.now()}`, table: { connection: 'bench', database: DB, table: CSM }, alter: ALTER, throttle: { maxThreadsRunning: 1000 }, cleanup: { mode: 'trickle-delete' }, ...(process.env.BENCH_CHUNK_MILLIS ? { chunk: { targetMillis: Number(process.env.BENCH_CHUNK_MILLIS) } } : {}) }));
  const writer2 = startApplication(writes);
  await sleep(QUIET_MILLIS);
  const start = now();
  const out = await run(process.execPath, [FERRY, 'local', 'online-alter', '--input', input, '--state-dir', join(dir, 'state'), '--approve', 'all']);
  const end = now();
  await sleep(QUIET_MILLIS);
  const phases = (JSON.parse(out.trim().split('\n').pop()!) as { phases: Record<string, string> }).phases;
  results.push({
    tool: 'ferry online-alter (defaults: chunks of 0.5 s, trickle-delete of the old table)',
    ops: await writer2.stop(),
    windows: [
      { label: 'before', from: -Infinity, to: start },
      ...ferryWindows(phases, [['prepare', 'triggers created'], ['copy', 'copy'], ['verify', 'verify'], ['cutover-approval', 'cut-over (RENAME)'], ['cleanup', 'trickle-delete of the old table']], end),
      { label: 'whole run', from: start, to: end },
      { label: 'after', from: end, to: Infinity },
    ],
  });
  return results;
}

async function tableCopy(conn: mysql.Connection): Promise<Measured[]> {
  const src = `${DB}_src`;
  const tgt = `${DB}_tgt`;
  process.stderr.write(`bench: seeding ${ROWS.toLocaleString('en-US')} history rows…\n`);
  await conn.query(`DROP DATABASE IF EXISTS ${src}; DROP DATABASE IF EXISTS ${tgt}; CREATE DATABASE ${src}; CREATE DATABASE ${tgt};
    CREATE TABLE ${src}.h ${HISTORY_TABLE('int')}; CREATE TABLE ${tgt}.h ${HISTORY_TABLE('bigint unsigned')};
    SET SESSION max_recursive_iterations = ${ROWS};
    INSERT INTO ${src}.h (version, created, state, grade, max_grade, student_module_id)
      WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ${ROWS})
      SELECT CONCAT('v', n % 5), TIMESTAMP('2024-01-01') + INTERVAL n SECOND, REPEAT(CHAR(97 + n % 26), 300), n % 10, 10, n % 50000 FROM s`);
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-app-'));
  const stateDir = join(dir, 'state');
  const migrationId = `bench-app-copy-${Date.now()}`;
  const flagsFile = join(stateDir, 'flags.json');
  // The application: history rows into the old table until it has seen the copy flags ("write new"; it takes it 3 s to
  // notice, while the copy runs), then into the new one, where it also updates and deletes its own rows.
  let flagsSeenAt: number | null = null;
  const writesNew = () => {
    if (flagsSeenAt === null && existsSync(flagsFile) && readFileSync(flagsFile, 'utf8').includes('ENABLE_CSMH_EXTENDED')) flagsSeenAt = Date.now();
    return flagsSeenAt !== null && Date.now() - flagsSeenAt > 3000;
  };
  let lastTargetId = 0;
  const writes = (i: number): AppStatement => {
    const table = writesNew() ? `${tgt}.h` : `${src}.h`;
    if (table === `${tgt}.h` && i % 3 !== 0 && lastTargetId > 0) {
      return i % 3 === 1
        ? { op: 'update', sql: `UPDATE ${table} SET grade = ? WHERE id = ?`, params: [i % 10, lastTargetId] }
        : { op: 'delete', sql: `DELETE FROM ${table} WHERE id = ?`, params: [lastTargetId--] };
    }
    return { op: 'insert', sql: `INSERT INTO ${table} (version, created, state, student_module_id) VALUES ('live', NOW(6), 'x', ?)`, params: [i] };
  };
  const results: Measured[] = [];

  // The same application, no migration running.
  let writer = startAppWriter(writes, { url });
  await sleep(QUIET_MILLIS * 3);
  results.push({ tool: 'table-copy: the application alone, no migration', ops: await writer.stop(), windows: [{ label: 'no migration', from: -Infinity, to: Infinity }] });

  const input = join(dir, 'copy.json');
  writeFileSync(input, JSON.stringify({
    migrationId,
    source: { connection: 'bench', database: src, table: 'h' },
    target: { connection: 'bench', database: tgt, table: 'h' },
    idOffset: '1000000',
    catchUp: { quietSeconds: 2, pollSeconds: 1 },
    throttle: { maxThreadsRunning: 1000 },
    flags: { copy: { ENABLE_CSMH_EXTENDED: 'true' }, cutover: { READ_FROM_OLD: 'false' } },
    cleanup: { mode: 'trickle-delete' },
  }));
  writer = startAppWriter(writes, { url });
  // remember the ids the application gets in the new table, to update and delete its own rows there
  const follow = setInterval(() => {
    const last = [...writer.ops].reverse().find((o) => o.op === 'insert' && o.insertId && BigInt(o.insertId) > BigInt(ROWS) + 1000n);
    if (last && Number(last.insertId) > lastTargetId) lastTargetId = Number(last.insertId);
  }, 50);
  await sleep(QUIET_MILLIS);
  const start = now();
  const out = await run(process.execPath, [FERRY, 'local', 'table-copy', '--input', input, '--state-dir', stateDir, '--approve', 'all']);
  const end = now();
  await sleep(QUIET_MILLIS);
  clearInterval(follow);
  const phases = (JSON.parse(out.trim().split('\n').pop()!) as { phases: Record<string, string> }).phases;
  results.push({
    tool: 'table-copy: ferry, one server, trickle-delete',
    ops: await writer.stop(),
    windows: [
      { label: 'before', from: -Infinity, to: start },
      ...ferryWindows(phases, [['copy', 'copy (old table, then the new one)'], ['catch-up', 'catch-up'], ['verify', 'verify'], ['sweep', 'sweep after the cut-over flags'], ['cleanup', 'trickle-delete of the old table']], end),
      { label: 'whole run', from: start, to: end },
      { label: 'after', from: end, to: Infinity },
    ],
  });
  await conn.query(`DROP DATABASE ${src}; DROP DATABASE ${tgt}`);
  return results;
}

async function main() {
  ensurePtOsc();
  await build();
  const conn = await mysql.createConnection({ uri: url, multipleStatements: true });
  const application = TRANSACTION_WRITERS
    ? `online-alter's application ${TRANSACTION_WRITERS} writers in transactions of update, insert, delete, COMMIT (each a write below), 10 ms between transactions`
    : 'single-row autocommit writes, 10 ms apart';
  process.stdout.write(`application impact: ${application}, no retries; ${ROWS.toLocaleString('en-US')} rows; MariaDB at ${new URL(url).hostname}\n`);
  for (const m of await onlineAlter(conn)) process.stdout.write(report(m).join('\n') + '\n');
  if (!process.env.BENCH_APP_SKIP_COPY) for (const m of await tableCopy(conn)) process.stdout.write(report(m).join('\n') + '\n');
  await conn.query(`DROP DATABASE IF EXISTS ${DB}`);
  await conn.end();
}

await main();
