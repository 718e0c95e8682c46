/**
 * `npm run demo`: seeds a sample Open edX history table in the local MariaDB (databases
 * ferry_demo_edxapp and ferry_demo_csmh, recreated each time), keeps writing to it for a few
 * seconds like a live site, and runs the whole table-copy migration with approvals given.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { redact, resolveMysqlUrl } from '../lambdas/adapters/mysql2.ts';

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

async function main(): Promise<number> {
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

  const ferry = fileURLToPath(new URL('./ferry.js', import.meta.url));
  const args = ['local', 'table-copy', '--input', inputFile, '--approve', 'all', '--state-dir', STATE_DIR];
  process.stderr.write(`demo: npx ferry ${args.join(' ')}\n`);
  const code = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, [ferry, ...args], { stdio: 'inherit' });
    child.on('close', (c) => resolve(c ?? 1));
  });
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

process.exitCode = await main();
