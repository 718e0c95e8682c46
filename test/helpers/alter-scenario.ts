import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { tempDir, writeJson } from './cli.ts';
import { admin, makeDatabases } from './db.ts';

export const CSM = 'courseware_studentmodule';

/** courseware_studentmodule as edx-platform defines it. */
export function csmSql(db: string, table: string): string {
  return `CREATE TABLE \`${db}\`.\`${table}\` (
    id int NOT NULL AUTO_INCREMENT PRIMARY KEY, module_type varchar(32) NOT NULL DEFAULT 'problem', module_id varchar(255) NOT NULL,
    student_id int NOT NULL, state longtext NULL, grade double NULL, created datetime(6) NOT NULL, modified datetime(6) NOT NULL,
    max_grade double NULL, done varchar(8) NOT NULL DEFAULT 'na', course_id varchar(255) NOT NULL,
    UNIQUE KEY student_module (student_id, module_id, course_id), KEY module_type (module_type))`;
}

const COLUMNS = 'id, module_type, module_id, student_id, state, grade, created, modified, max_grade, done, course_id';

export async function csmFingerprint(conn: mysql.Connection, db: string, table: string): Promise<{ rows: string; checksum: string }> {
  const [rows] = await conn.query(
    `SELECT COUNT(*) AS n, COALESCE(BIT_XOR(CRC32(CONCAT_WS('#', ${COLUMNS}, ISNULL(state), ISNULL(grade), ISNULL(max_grade)))), 0) AS c FROM \`${db}\`.\`${table}\``,
  );
  const r = (rows as { n: string; c: string }[])[0]!;
  return { rows: String(r.n), checksum: String(r.c) };
}

export interface AlterScenario {
  readonly conn: mysql.Connection;
  readonly db: string;
  readonly stateDir: string;
  readonly migrationId: string;
  inputFile(overrides?: Record<string, unknown>): string;
  /** Starts an application writing the table (and the reference table, in the same transaction). */
  startWriter(): { stop: () => Promise<{ inserts: number; updates: number; deletes: number; deadlocks: number }> };
  columnType(table?: string): Promise<string>;
  tables(): Promise<string[]>;
  triggers(): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * A courseware_studentmodule with `rows` rows (ids with a gap, a deleted top id so AUTO_INCREMENT
 * sits above MAX(id)), and `reference`, a table without triggers that every write also goes to.
 */
export async function alterScenario(rows = 5000, role = 'csm'): Promise<AlterScenario> {
  const conn = await admin();
  const dbs = await makeDatabases(conn, role);
  const db = dbs.names[role]!;
  await conn.query(csmSql(db, CSM));
  await conn.query(`SET SESSION max_recursive_iterations = ${rows + 10}`);
  await conn.query(`INSERT INTO \`${db}\`.${CSM} (id, module_id, student_id, state, grade, created, modified, max_grade, course_id)
    WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ${rows})
    SELECT n + IF(n > ${Math.floor(rows / 2)}, 1000, 0), CONCAT('block-v1:edX+', n % 97), n, IF(n % 9 = 0, NULL, CONCAT('{"n":', n, '}')), IF(n % 4 = 0, NULL, n / 7), '2024-01-01 00:00:00.000001', '2024-01-01', IF(n % 2, 1, NULL), CONCAT('course-v1:', n % 5) FROM s`);
  // the highest id is deleted: AUTO_INCREMENT stays above MAX(id), and the altered table must continue above it
  await conn.query(`DELETE FROM \`${db}\`.${CSM} ORDER BY id DESC LIMIT 1`);
  await conn.query(`CREATE TABLE \`${db}\`.reference LIKE \`${db}\`.${CSM}`);
  await conn.query(`INSERT INTO \`${db}\`.reference SELECT * FROM \`${db}\`.${CSM}`);
  const dir = tempDir();
  const migrationId = `csm-${db.slice(-6)}`;
  return {
    conn,
    db,
    migrationId,
    stateDir: join(dir, 'state'),
    inputFile: (overrides = {}) =>
      writeJson(dir, `in-${Math.random().toString(36).slice(2)}.json`, {
        migrationId,
        table: { connection: 'edxapp', database: db, table: CSM },
        alter: 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT',
        chunk: { targetMillis: 20, minRows: 50, maxRows: 300 },
        throttle: { maxThreadsRunning: 200, waitSeconds: 1 },
        cutover: { lockWaitSeconds: 1, attempts: 20 },
        cleanup: { mode: 'trickle-delete', batchRows: 700 },
        ...overrides,
      }),
    startWriter() {
      let running = true;
      const counts = { inserts: 0, updates: 0, deletes: 0, deadlocks: 0 };
      const loop = (async () => {
        const w = await admin();
        let i = 0;
        while (running) {
          i++;
          const op = i % 3;
          await applicationTransaction(w, async (attempt) => {
            if (op === 0) {
              const [r] = await w.query(`INSERT INTO \`${db}\`.${CSM} (module_id, student_id, state, created, modified, course_id) VALUES (?, ?, 'new', NOW(6), NOW(6), 'course-v1:live')`, [`live-${i}`, 1_000_000 + i]);
              const id = (r as { insertId: number }).insertId;
              // by name: an ALTER under test may rename or move the table's other columns
              const cols = 'id, module_id, student_id, state, created, modified, course_id';
              await w.query(`INSERT INTO \`${db}\`.reference (${cols}) SELECT ${cols} FROM \`${db}\`.${CSM} WHERE id = ?`, [id]);
              if (attempt === 0) counts.inserts++;
            } else {
              const [pick] = await w.query(`SELECT id FROM \`${db}\`.reference ORDER BY RAND() LIMIT 1`);
              const id = (pick as { id: number }[])[0]?.id;
              if (id !== undefined && op === 1) {
                for (const t of [CSM, 'reference']) await w.query(`UPDATE \`${db}\`.\`${t}\` SET state = ?, grade = ?, modified = '2025-05-05 05:05:05.5' WHERE id = ?`, [`updated ${i}`, i, id]);
                if (attempt === 0) counts.updates++;
              } else if (id !== undefined) {
                for (const t of [CSM, 'reference']) await w.query(`DELETE FROM \`${db}\`.\`${t}\` WHERE id = ?`, [id]);
                if (attempt === 0) counts.deletes++;
              }
            }
          }, () => void counts.deadlocks++);
          await new Promise((r) => setTimeout(r, 5));
        }
        await w.end();
      })();
      return {
        stop: async () => {
          running = false;
          await loop;
          return counts;
        },
      };
    },
    async columnType(table = CSM) {
      const [r] = await conn.query('SELECT COLUMN_TYPE AS t FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ?', [db, table, 'id']);
      return (r as { t: string }[])[0]?.t ?? '(none)';
    },
    async tables() {
      const [r] = await conn.query('SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME', [db]);
      return (r as { t: string }[]).map((x) => x.t).sort();
    },
    async triggers() {
      const [r] = await conn.query('SELECT TRIGGER_NAME AS t FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?', [db]);
      return (r as { t: string }[]).map((x) => x.t);
    },
    close: async () => {
      await dbs.drop();
      await conn.end();
    },
  };
}

/**
 * One transaction of an application on InnoDB: `body` runs between START TRANSACTION and COMMIT,
 * and is run again whole (`attempt` counting from 0, 20 times at most) when InnoDB chose it as a
 * deadlock victim (1213), or when its snapshot predates a RENAME of the table (1412, "table
 * definition has changed"); `retried` hears each time.
 */
export async function applicationTransaction<T>(conn: mysql.Connection, body: (attempt: number) => Promise<T>, retried: () => void): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    await conn.query('START TRANSACTION');
    try {
      const result = await body(attempt);
      await conn.query('COMMIT');
      return result;
    } catch (err) {
      await conn.query('ROLLBACK');
      if (![1213, 1412].includes((err as { errno?: number }).errno ?? 0) || attempt >= 20) throw err;
      retried();
    }
  }
}

/** Runs an application's write as an application on InnoDB does: a transaction chosen as a deadlock victim is run again. */
export async function asApplication<T>(write: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      if ((err as { errno?: number }).errno !== 1213 || attempt >= 20) throw err;
    }
  }
}

/** The migration's checkpoint: its phase and how many rows it has copied, or null before there is one. */
export async function checkpointOf(sc: AlterScenario): Promise<{ phase: string; rowsCopied: bigint } | null> {
  const [rows] = await sc.conn.query(`SELECT phase, state FROM \`${sc.db}\`._ferry_checkpoints WHERE migration_id = ?`, [sc.migrationId]).catch(() => [[]] as never);
  const row = (rows as { phase: string; state: string }[])[0];
  return row ? { phase: row.phase, rowsCopied: BigInt(JSON.parse(row.state).rowsCopied) } : null;
}

/** Waits until the copy has copied more than `rows` rows (the table must be big enough that it has not finished by then). */
export async function whileCopying(sc: AlterScenario, rows: bigint, running: { child: { exitCode: number | null } }): Promise<void> {
  for (;;) {
    const cp = await checkpointOf(sc);
    if (cp?.phase === 'copy' && cp.rowsCopied > rows) return;
    if (running.child.exitCode !== null || (cp && cp.phase !== 'copy' && cp.phase !== 'prepare')) throw new Error(`the copy was not seen under way (checkpoint ${JSON.stringify(cp)})`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Count and an order-independent fingerprint of every row over all of a table's columns, in their order. */
export async function tableContent(conn: mysql.Connection, db: string, table: string): Promise<{ rows: string; checksum: string; columns: string[] }> {
  const [cols] = await conn.query('SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION', [db, table]);
  const columns = (cols as { c: string }[]).map((r) => r.c);
  const row = `CONCAT_WS('|', ${columns.map((c) => `QUOTE(\`${c}\`)`).join(', ')})`;
  const [rows] = await conn.query(`SELECT COUNT(*) AS n, COALESCE(BIT_XOR(CAST(CONV(LEFT(MD5(${row}), 16), 16, 10) AS UNSIGNED)), 0) AS c FROM \`${db}\`.\`${table}\``);
  const r = (rows as { n: string; c: string }[])[0]!;
  return { rows: String(r.n), checksum: String(r.c), columns };
}

/** SHOW CREATE TABLE, with the table's name, its AUTO_INCREMENT counter and its constraints' names left out, for "same schema" assertions. */
export async function tableSchema(conn: mysql.Connection, db: string, table: string): Promise<string> {
  const [rows] = await conn.query(`SHOW CREATE TABLE \`${db}\`.\`${table}\``);
  return String((rows as Record<string, string>[])[0]!['Create Table'])
    .replace(/^CREATE TABLE `[^`]+`/, 'CREATE TABLE t')
    .replace(/ AUTO_INCREMENT=\d+/, '')
    .replace(/CONSTRAINT `[^`]+`/g, 'CONSTRAINT fk');
}
