/**
 * `npm run demo`: three migrations, end to end, with approvals given. Every database it makes is
 * named for this run (`ferry_demo_<6 hex>_…`, so two demos on one server never meet, and nobody
 * else's database is touched) and dropped when it ends.
 * 1. table-copy: seeds a sample Open edX history table in the MariaDB MYSQL_URL names (databases
 *    <run>_edxapp and <run>_csmh), keeps writing to it for a few seconds like a live site, and
 *    moves it to a BIGINT table in the other database.
 * 2. online-alter: widens the id of <run>_edxapp.courseware_studentmodule to BIGINT UNSIGNED
 *    while a writer inserts, updates and deletes rows, with the atomic swap approved.
 * 3. doctype-copy: seeds a CommCare-like CouchDB database (an embedded in-memory PouchDB Server
 *    unless COUCH_URL is set), keeps editing users while it runs, and moves the user and group
 *    doc types to their own database (<run>_commcarehq__users).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { redact, resolveMysqlUrl } from '../lambdas/adapters/mysql2.ts';
import { startPouchDbServer } from './cli/embedded-couch.ts';

const ROWS = 200_000;
/** This run's name: every database and state dir of the demo carries it. */
const RUN = `ferry_demo_${randomBytes(3).toString('hex')}`;
const SOURCE_DB = `${RUN}_edxapp`;
const TARGET_DB = `${RUN}_csmh`;
const COUCH_SOURCE = `${RUN}_commcarehq`;
const COUCH_TARGET = `${RUN}_commcarehq__users`;
const SOURCE = 'courseware_studentmodulehistory';
const TARGET = 'coursewarehistoryextended_studentmodulehistoryextended';
const STATE_DIR = `.ferry/${RUN}/table-copy`;

const columns = (idType: string) => `(
  id ${idType} NOT NULL AUTO_INCREMENT PRIMARY KEY,
  version varchar(255) NULL, created datetime(6) NOT NULL, state longtext NULL,
  grade double NULL, max_grade double NULL, student_module_id int NOT NULL,
  KEY created (created), KEY student_module_id (student_module_id), KEY version (version))`;

const FERRY = fileURLToPath(new URL('./ferry.js', import.meta.url));

/** An empty state dir for one demo migration, with its input written in it; returns the input's path. */
function freshRun(stateDir: string, input: Record<string, unknown>): string {
  rmSync(stateDir, { recursive: true, force: true });
  mkdirSync(stateDir, { recursive: true });
  const file = `${stateDir}/input.json`;
  writeFileSync(file, JSON.stringify(input, null, 2));
  return file;
}

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
  const inputFile = freshRun(STATE_DIR, {
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
  });

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

async function onlineAlterDemo(): Promise<number> {
  const { url } = resolveMysqlUrl('edxapp');
  const conn = await mysql.createConnection({ uri: url, multipleStatements: true });
  const table = `${SOURCE_DB}.courseware_studentmodule`;
  await conn.query(`DROP TABLE IF EXISTS ${table}, ${SOURCE_DB}._courseware_studentmodule_new, ${SOURCE_DB}._courseware_studentmodule_old;
    CREATE TABLE ${table} (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, module_type varchar(32) NOT NULL DEFAULT 'problem',
      module_id varchar(255) NOT NULL, student_id int NOT NULL, state longtext NULL, grade double NULL, created datetime(6) NOT NULL,
      modified datetime(6) NOT NULL, max_grade double NULL, done varchar(8) NOT NULL DEFAULT 'na', course_id varchar(255) NOT NULL,
      UNIQUE KEY student_module (student_id, module_id, course_id));
    SET SESSION max_recursive_iterations = 100000;
    INSERT INTO ${table} (module_id, student_id, state, grade, created, modified, max_grade, course_id)
      WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 100000)
      SELECT CONCAT('block-v1:edX+DemoX+problem+', n % 300), n DIV 3, '{"attempts": 1}', n % 4, NOW(6), NOW(6), 3, CONCAT('course-v1:edX+DemoX+', n % 3) FROM s;`);
  process.stderr.write(`demo: ${table} has 100,000 rows with an INT id; a writer keeps answering problems while ferry widens it\n`);
  let writes = 0;
  let deadlocks = 0;
  let running = true;
  const writer = (async () => {
    for (let i = 0; running; i++) {
      const id = 1 + ((i * 7919) % 100000);
      const write = () =>
        i % 3 === 0
          ? conn.query(`INSERT IGNORE INTO ${table} (module_id, student_id, state, created, modified, course_id) VALUES (?, ?, '{}', NOW(6), NOW(6), 'course-v1:edX+DemoX+live')`, [`live-${i}`, 900000 + i])
          : i % 3 === 1
            ? conn.query(`UPDATE ${table} SET grade = grade + 1, modified = NOW(6) WHERE id = ?`, [id])
            : conn.query(`DELETE FROM ${table} WHERE id = ?`, [id]);
      // Like any application on InnoDB, retry a write chosen as a deadlock victim (more likely while triggers run).
      for (;;) {
        try {
          await write();
          break;
        } catch (err) {
          if ((err as { errno?: number }).errno !== 1213) throw err;
          deadlocks++;
        }
      }
      writes++;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const stateDir = `.ferry/${RUN}/online-alter`;
  const inputFile = freshRun(stateDir, {
    migrationId: 'csm-bigint-demo',
    table: { connection: 'edxapp', database: SOURCE_DB, table: 'courseware_studentmodule' },
    alter: 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT',
    chunk: { targetMillis: 200 },
    throttle: { maxThreadsRunning: 25, waitSeconds: 2 },
    cleanup: { mode: 'trickle-delete', batchRows: 20000 },
  });
  const code = await ferry(['local', 'online-alter', '--input', inputFile, '--approve', 'all', '--state-dir', stateDir]);
  running = false;
  await writer;
  const [[row]] = (await conn.query(`SELECT COLUMN_TYPE AS type FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'courseware_studentmodule' AND COLUMN_NAME = 'id'`, [SOURCE_DB])) as unknown as [[{ type: string }]];
  await conn.end();
  process.stderr.write(`demo: ${writes} writes went on during the migration (${deadlocks} retried after a deadlock); ${table}.id is now ${row.type}\n`);
  return code === 0 && row.type === 'bigint(20) unsigned' ? 0 : 1;
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
    for (const db of [COUCH_SOURCE, COUCH_TARGET]) {
      await call(`/${db}`, 'DELETE');
      await call(`/${db}`, 'PUT');
    }
    const types = [...USER_TYPES, ...USER_TYPES.map((t) => `${t}-Deleted`).slice(0, 2), ...OTHER_TYPES];
    const docs = Array.from({ length: 6000 }, (_, i) => ({ _id: `doc-${String(i).padStart(5, '0')}`, doc_type: types[i % types.length], domain: `demo-${i % 12}` }));
    await call(`/${COUCH_SOURCE}/_bulk_docs`, 'POST', { docs });
    // CommCare's own view of docs by type, which the migration reads instead of every doc
    await call(`/${COUCH_SOURCE}/_design/all_docs`, 'PUT', { views: { by_doc_type: { map: 'function (doc) { if (doc.doc_type) { emit([doc.doc_type, doc._id], null); } }', reduce: '_count' } } });
    process.stderr.write(`demo: seeded ${COUCH_SOURCE} with ${docs.length} docs of ${types.length} types, and CommCare's all_docs/by_doc_type view\n`);
    const stateDir = `.ferry/${RUN}/doctype-copy`;
    const inputFile = freshRun(stateDir, {
      migrationId: 'user_db_migration_demo',
      source: { connection: 'main', database: COUCH_SOURCE, docTypeView: 'all_docs/by_doc_type' },
      target: { connection: 'main', database: COUCH_TARGET },
      docTypes: USER_TYPES,
      topOff: { quietSeconds: 2, pollSeconds: 1 },
      flags: { cutover: { USERS_GROUPS_DB: COUCH_TARGET } },
      cleanup: { mode: 'delete' },
    });
    // Users sign up while the migration runs: the top-off carries them over.
    let created = 0;
    const writer = (async () => {
      const until = Date.now() + 3000;
      while (Date.now() < until) {
        await call(`/${COUCH_SOURCE}/_bulk_docs`, 'POST', { docs: [{ _id: `signup-${created}`, doc_type: 'CommCareUser', domain: 'demo-0' }] });
        created++;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const code = await ferry(['local', 'doctype-copy', '--input', inputFile, '--approve', 'all', '--state-dir', stateDir], { ...process.env, COUCH_URL: url });
    await writer;
    if (code === 0) {
      const stats = await call(`/${COUCH_TARGET}/_all_docs`, 'GET');
      const moved = (stats.body as { rows: { id: string }[] }).rows.filter((r) => !r.id.startsWith('_design/')).length;
      process.stderr.write(`demo: ${created} users signed up during the run; ${moved} docs now in ${COUCH_TARGET}\n`);
    }
    return code;
  } finally {
    for (const db of [COUCH_SOURCE, COUCH_TARGET]) await call(`/${db}`, 'DELETE').catch(() => undefined);
    await embedded?.stop();
  }
}

async function main(): Promise<number> {
  process.stderr.write(`demo: this run's databases are ${SOURCE_DB} and ${TARGET_DB} in the MariaDB of MYSQL_URL, ${COUCH_SOURCE} and ${COUCH_TARGET} in CouchDB; all are dropped when it ends\n`);
  try {
    for (const demo of [tableCopyDemo, onlineAlterDemo, doctypeCopyDemo]) {
      const code = await demo();
      if (code !== 0) return code;
    }
    return 0;
  } finally {
    await dropDemoDatabases();
    rmSync(`.ferry/${RUN}`, { recursive: true, force: true });
  }
}

/** Drops the MariaDB databases this run made (named for it), and nothing else. */
async function dropDemoDatabases(): Promise<void> {
  const conn = await mysql.createConnection({ uri: resolveMysqlUrl('edxapp').url }).catch(() => null);
  if (!conn) return;
  try {
    for (const db of [SOURCE_DB, TARGET_DB]) await conn.query(`DROP DATABASE IF EXISTS \`${db}\``);
  } finally {
    await conn.end();
  }
}

process.exitCode = await main();
