/**
 * `npm run demo`: two migrations, end to end, with approvals given.
 * 1. table-copy: seeds a sample Open edX history table in the local MariaDB (databases
 *    ferry_demo_edxapp and ferry_demo_csmh, recreated each time), keeps writing to it for a few
 *    seconds like a live site, and moves it to a BIGINT table in the other database.
 * 2. doctype-copy: seeds a CommCare-like CouchDB database (an embedded in-memory PouchDB Server
 *    unless COUCH_URL is set), keeps editing users while it runs, and moves the user and group
 *    doc types to their own database.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { redact, resolveMysqlUrl } from '../lambdas/adapters/mysql2.ts';
import { startPouchDbServer } from './cli/embedded-couch.ts';

const ROWS = 200_000;
const SOURCE_DB = 'ferry_demo_edxapp';
const TARGET_DB = 'ferry_demo_csmh';
const SOURCE = 'courseware_studentmodulehistory';
const TARGET = 'coursewarehistoryextended_studentmodulehistoryextended';
const STATE_DIR = '.ferry/demo';

const columns = (idType: string) => `(
  id ${idType} NOT NULL AUTO_INCREMENT PRIMARY KEY,
  version varchar(255) NULL, created datetime(6) NOT NULL, state longtext NULL,
  grade double NULL, max_grade double NULL, student_module_id int NOT NULL,
  KEY created (created), KEY student_module_id (student_module_id), KEY version (version))`;

const FERRY = fileURLToPath(new URL('./ferry.js', import.meta.url));

function ferry(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  process.stderr.write(`demo: npx ferry ${args.join(' ')}\n`);
  return new Promise<number>((resolve) => {
    const child = spawn(process.execPath, [FERRY, ...args], { stdio: 'inherit', env });
    child.on('close', (c) => resolve(c ?? 1));
  });
}

async function tableCopyDemo(): Promise<number> {
  const { url, from } = resolveMysqlUrl('edxapp');
  let conn: mysql.Connection;
  try {
    conn = await mysql.createConnection({ uri: url, multipleStatements: true });
  } catch (err) {
    process.stderr.write(`demo: cannot reach MariaDB at ${redact(url)} (${from}): ${(err as Error).message}\n` +
      'Start it (see `.ci/run`) or set MYSQL_URL.\n');
    return 2;
  }
  process.stderr.write(`demo: seeding ${SOURCE_DB}.${SOURCE} with ${ROWS.toLocaleString('en-US')} rows (ids with gaps, ~300-byte state)\n`);
  await conn.query(`DROP DATABASE IF EXISTS ${SOURCE_DB}; DROP DATABASE IF EXISTS ${TARGET_DB};
    CREATE DATABASE ${SOURCE_DB}; CREATE DATABASE ${TARGET_DB};
    CREATE TABLE ${SOURCE_DB}.${SOURCE} ${columns('int')};
    CREATE TABLE ${TARGET_DB}.${TARGET} ${columns('bigint unsigned')};
    SET SESSION max_recursive_iterations = ${ROWS};
    INSERT INTO ${SOURCE_DB}.${SOURCE} (id, version, created, state, grade, max_grade, student_module_id)
      WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ${ROWS})
      SELECT n + (n DIV 1000) * 50, IF(n % 7 = 0, NULL, CONCAT('v', n % 5)), TIMESTAMP('2024-01-01') + INTERVAL n SECOND,
             CONCAT('{"attempts": ', n % 9, ', "input_state": "', REPEAT(CHAR(97 + n % 26), 280), '"}'),
             IF(n % 3 = 0, NULL, n % 10), 10, n % 5000
      FROM seq;`);
  rmSync(STATE_DIR, { recursive: true, force: true });
  mkdirSync(STATE_DIR, { recursive: true });
  const inputFile = `${STATE_DIR}/input.json`;
  writeFileSync(inputFile, JSON.stringify({
    migrationId: 'csmh-extended-demo',
    source: { connection: 'edxapp', database: SOURCE_DB, table: SOURCE },
    target: { connection: 'csmh', database: TARGET_DB, table: TARGET },
    idOffset: '1000000',
    catchUp: { quietSeconds: 3, pollSeconds: 1 },
    chunk: { targetMillis: 500, minRows: 100, maxRows: 100000 },
    throttle: { maxThreadsRunning: 25, waitSeconds: 2 },
    flags: {
      copy: { ENABLE_CSMH_EXTENDED: 'true', ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES: 'true' },
      cutover: { ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES: 'false' },
    },
    cleanup: { mode: 'trickle-delete', batchRows: 20000 },
  }, null, 2));

  // A "live site": new attempts keep arriving in the old table for the first few seconds.
  let live = 0;
  const writer = (async () => {
    const until = Date.now() + 4000;
    while (Date.now() < until) {
      await conn.query(`INSERT INTO ${SOURCE_DB}.${SOURCE} (version, created, state, student_module_id) VALUES ('live', NOW(6), '{"attempts": 1}', 1)`);
      live++;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();

  const code = await ferry(['local', 'table-copy', '--input', inputFile, '--approve', 'all', '--state-dir', STATE_DIR]);
  await writer;
  const [[counts]] = (await conn.query(
    `SELECT (SELECT COUNT(*) FROM ${SOURCE_DB}.${SOURCE}) AS source_rows, (SELECT COUNT(*) FROM ${TARGET_DB}.${TARGET}) AS target_rows`,
  )) as unknown as [[{ source_rows: number; target_rows: number }]];
  await conn.end();
  process.stderr.write(
    `demo: ${live} rows written during the run; now ${counts.target_rows} rows in ${TARGET_DB}.${TARGET}, ${counts.source_rows} left in the source\n`,
  );
  if (code === 0 && Number(counts.target_rows) !== ROWS + live) {
    process.stderr.write(`demo: expected ${ROWS + live} rows in the target\n`);
    return 1;
  }
  return code;
}

const USER_TYPES = ['CommCareUser', 'WebUser', 'Group', 'UserRole', 'Invitation'];
const OTHER_TYPES = ['CommCareCase', 'XFormInstance', 'Application'];

async function doctypeCopyDemo(): Promise<number> {
  const embedded = process.env.COUCH_URL ? null : await startPouchDbServer();
  const url = process.env.COUCH_URL ?? embedded!.url;
  if (embedded) process.stderr.write(`demo: started an embedded in-memory PouchDB Server at ${url}\n`);
  const call = async (path: string, method: string, body?: unknown) => {
    const res = await fetch(`${url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as never };
  };
  try {
    for (const db of ['ferry_demo_commcarehq', 'ferry_demo_commcarehq__users']) {
      await call(`/${db}`, 'DELETE');
      await call(`/${db}`, 'PUT');
    }
    const types = [...USER_TYPES, ...USER_TYPES.map((t) => `${t}-Deleted`).slice(0, 2), ...OTHER_TYPES];
    const docs = Array.from({ length: 6000 }, (_, i) => ({ _id: `doc-${String(i).padStart(5, '0')}`, doc_type: types[i % types.length], domain: `demo-${i % 12}` }));
    await call('/ferry_demo_commcarehq/_bulk_docs', 'POST', { docs });
    process.stderr.write(`demo: seeded ferry_demo_commcarehq with ${docs.length} docs of ${types.length} types\n`);
    const stateDir = '.ferry/demo-users';
    rmSync(stateDir, { recursive: true, force: true });
    mkdirSync(stateDir, { recursive: true });
    const inputFile = `${stateDir}/input.json`;
    writeFileSync(inputFile, JSON.stringify({
      migrationId: 'user_db_migration_demo',
      source: { connection: 'main', database: 'ferry_demo_commcarehq' },
      target: { connection: 'main', database: 'ferry_demo_commcarehq__users' },
      docTypes: USER_TYPES,
      topOff: { quietSeconds: 2, pollSeconds: 1 },
      flags: { cutover: { USERS_GROUPS_DB: 'ferry_demo_commcarehq__users' } },
      cleanup: { mode: 'delete' },
    }, null, 2));
    // Users sign up while the migration runs: the top-off carries them over.
    let created = 0;
    const writer = (async () => {
      const until = Date.now() + 3000;
      while (Date.now() < until) {
        await call('/ferry_demo_commcarehq/_bulk_docs', 'POST', { docs: [{ _id: `signup-${created}`, doc_type: 'CommCareUser', domain: 'demo-0' }] });
        created++;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const code = await ferry(['local', 'doctype-copy', '--input', inputFile, '--approve', 'all', '--state-dir', stateDir], { ...process.env, COUCH_URL: url });
    await writer;
    if (code === 0) {
      const stats = await call('/ferry_demo_commcarehq__users/_all_docs', 'GET');
      const moved = (stats.body as { rows: { id: string }[] }).rows.filter((r) => !r.id.startsWith('_design/')).length;
      process.stderr.write(`demo: ${created} users signed up during the run; ${moved} docs now in ferry_demo_commcarehq__users\n`);
    }
    return code;
  } finally {
    await embedded?.stop();
  }
}

async function main(): Promise<number> {
  const tableCode = await tableCopyDemo();
  if (tableCode !== 0) return tableCode;
  return doctypeCopyDemo();
}

process.exitCode = await main();
