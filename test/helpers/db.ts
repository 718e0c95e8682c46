import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import { resolveMysqlUrl } from '../../lambdas/adapters/mysql2.ts';

export const MYSQL_URL = resolveMysqlUrl('tests').url;

/** The same server under another host name: ferry sees two servers and streams rows between them. */
export const OTHER_HOST_URL = (() => {
  const u = new URL(MYSQL_URL);
  u.hostname = u.hostname === '127.0.0.1' ? 'localhost' : '127.0.0.1';
  return u.toString();
})();

/** The tests' server as another user: the same host and port as MYSQL_URL. */
export function urlAs(user: string, password: string): string {
  const u = new URL(MYSQL_URL);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  return u.toString().replace(/\/$/, '');
}

export async function admin(): Promise<mysql.Connection> {
  return mysql.createConnection({ uri: MYSQL_URL, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true, multipleStatements: true });
}

/** Uniquely named databases for one test file; dropped by `drop()`. */
export async function makeDatabases(conn: mysql.Connection, ...roles: string[]): Promise<{ names: Record<string, string>; drop: () => Promise<void> }> {
  const tag = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const names: Record<string, string> = {};
  for (const role of roles) {
    names[role] = `ferry_t_${role}_${tag}`;
    await conn.query(`CREATE DATABASE \`${names[role]}\``);
  }
  return {
    names,
    drop: async () => {
      for (const name of Object.values(names)) await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
    },
  };
}

/** courseware_studentmodulehistory as edx-platform defines it, with the id type given. */
export function historyTableSql(db: string, table: string, idType: string): string {
  return `CREATE TABLE \`${db}\`.\`${table}\` (
    id ${idType} NOT NULL AUTO_INCREMENT PRIMARY KEY,
    version varchar(255) NULL,
    created datetime(6) NOT NULL,
    state longtext NULL,
    grade double NULL,
    max_grade double NULL,
    student_module_id int NOT NULL,
    KEY created (created), KEY student_module_id (student_module_id), KEY version (version)
  )`;
}

/** Inserts `count` history rows with ids `first, first+step, …` (gaps when step > 1), NULLs and odd values included. */
export async function seedHistory(conn: mysql.Connection, db: string, table: string, count: number, opts: { first?: bigint; step?: bigint; stateBytes?: number } = {}): Promise<void> {
  const first = opts.first ?? 1n;
  const step = opts.step ?? 1n;
  const stateBytes = opts.stateBytes ?? 40;
  const batch = 2000;
  for (let start = 0; start < count; start += batch) {
    const rows: unknown[][] = [];
    for (let i = start; i < Math.min(count, start + batch); i++) {
      const id = first + BigInt(i) * step;
      rows.push([
        id.toString(),
        i % 7 === 0 ? null : `v${i % 5}`,
        `2020-01-01 00:00:00.${String(i % 1_000_000).padStart(6, '0')}`,
        i % 11 === 0 ? null : `{"attempts": ${i}, "pad": "${'x'.repeat(stateBytes)}", "ü": "é"}`,
        i % 3 === 0 ? null : (i / 7).toString(),
        i % 2 === 0 ? null : '1',
        i % 997,
      ]);
    }
    await conn.query(`INSERT INTO \`${db}\`.\`${table}\` (id, version, created, state, grade, max_grade, student_module_id) VALUES ?`, [rows]);
  }
}

/**
 * Count and an order-independent fingerprint of every row (64 bits of each row's MD5, text as
 * utf8mb4 characters whatever the column's character set), for "same data" assertions.
 */
export async function tableFingerprint(conn: mysql.Connection, db: string, table: string): Promise<{ rows: string; checksum: string; minId: string | null; maxId: string | null }> {
  const text = (c: string) => `QUOTE(CONVERT(${c} USING utf8mb4))`;
  const row = `CONCAT_WS('|', id, ${text('version')}, created, ${text('state')}, QUOTE(grade), QUOTE(max_grade), student_module_id)`;
  const [rows] = await conn.query(
    `SELECT COUNT(*) AS n, COALESCE(BIT_XOR(CAST(CONV(LEFT(MD5(${row}), 16), 16, 10) AS UNSIGNED)), 0) AS c, MIN(id) AS lo, MAX(id) AS hi FROM \`${db}\`.\`${table}\``,
  );
  const r = (rows as Record<string, string | null>[])[0]!;
  return { rows: String(r.n), checksum: String(r.c), minId: r.lo === null ? null : String(r.lo), maxId: r.hi === null ? null : String(r.hi) };
}

/**
 * A throttle query that holds a migration for as long as its checkpoint (in `db`) is in `phase`:
 * a test that must act during a short phase (kill it there) gets all the time it needs. The
 * checkpoint table is created first, as ferry creates it, so Preflight can run the query.
 */
export async function phaseGate(db: string, phase: string): Promise<string> {
  const { CheckpointStore } = await import('../../lambdas/core/checkpoints.ts');
  const { Mysql2Connector } = await import('../../lambdas/adapters/mysql2.ts');
  const sql = new Mysql2Connector({ MYSQL_URL });
  try {
    await new CheckpointStore(await sql.connect('gate'), db, 'gate').ensureTable();
  } finally {
    await sql.closeAll();
  }
  return `SELECT COUNT(*) FROM \`${db}\`._ferry_checkpoints WHERE phase = '${phase}'`;
}
