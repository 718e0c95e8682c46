import { describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { runFerry, tempDir, writeJson } from '../helpers/cli.ts';
import { admin, makeDatabases } from '../helpers/db.ts';
import { failures, replayStudentModuleWrites, startAppWriter, startTransactionWriter, studentModuleWriter, type AppWriter } from '../helpers/app-writer.ts';
import { CSM, tableContent } from '../helpers/alter-scenario.ts';

const ROWS = 20_000;

const TABLE = `(id int NOT NULL AUTO_INCREMENT PRIMARY KEY, module_type varchar(32) NOT NULL DEFAULT 'problem',
  module_id varchar(255) NOT NULL, student_id int NOT NULL, state longtext NULL, grade double NULL, created datetime(6) NOT NULL,
  modified datetime(6) NOT NULL, max_grade double NULL, done varchar(8) NOT NULL DEFAULT 'na', course_id varchar(255) NOT NULL,
  UNIQUE KEY student_module (student_id, module_id, course_id), KEY modified (modified))`;

/**
 * The application's own triggers on `table`, writing `audit`: one BEFORE INSERT made under
 * PIPES_AS_CONCAT (so `||` joins text; made again under another SQL mode it would be OR and
 * write 0 or 1), two AFTER INSERT in a set order, a BEFORE and an AFTER UPDATE, an AFTER DELETE.
 */
async function makeTriggers(conn: mysql.Connection, db: string, table: string, audit: string, prefix: string): Promise<void> {
  const t = `\`${db}\`.\`${table}\``;
  const a = `\`${db}\`.\`${audit}\``;
  await conn.query(`CREATE TABLE IF NOT EXISTS ${a} (seq bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, row_id bigint NOT NULL, what varchar(40) NOT NULL)`);
  await conn.query("SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',PIPES_AS_CONCAT')");
  await conn.query(`CREATE TRIGGER \`${db}\`.${prefix}_bi BEFORE INSERT ON ${t} FOR EACH ROW SET NEW.done = 'i' || LEFT(NEW.module_type, 3)`);
  await conn.query("SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, ',PIPES_AS_CONCAT', '')");
  await conn.query(`CREATE TRIGGER \`${db}\`.${prefix}_ai_first AFTER INSERT ON ${t} FOR EACH ROW INSERT INTO ${a} (row_id, what) VALUES (NEW.id, 'insert first')`);
  await conn.query(`CREATE TRIGGER \`${db}\`.${prefix}_ai_second AFTER INSERT ON ${t} FOR EACH ROW INSERT INTO ${a} (row_id, what) VALUES (NEW.id, CONCAT('insert second ', NEW.done))`);
  await conn.query(`CREATE TRIGGER \`${db}\`.${prefix}_bu BEFORE UPDATE ON ${t} FOR EACH ROW SET NEW.max_grade = IFNULL(OLD.max_grade, 0) + 1`);
  await conn.query(`CREATE TRIGGER \`${db}\`.${prefix}_au AFTER UPDATE ON ${t} FOR EACH ROW BEGIN
      INSERT INTO ${a} (row_id, what) VALUES (NEW.id, CONCAT('update ', NEW.max_grade));
    END`);
  await conn.query(`CREATE TRIGGER \`${db}\`.${prefix}_ad AFTER DELETE ON ${t} FOR EACH ROW INSERT INTO ${a} (row_id, what) VALUES (OLD.id, 'delete')`);
}

async function triggersOf(conn: mysql.Connection, db: string, table: string, prefix: string) {
  const [rows] = await conn.query(
    `SELECT SUBSTRING(TRIGGER_NAME, ${prefix.length + 1}) AS name, ACTION_TIMING AS timing, EVENT_MANIPULATION AS event, ACTION_ORDER AS ord, SQL_MODE AS sqlMode, DEFINER AS definer,
       REPLACE(ACTION_STATEMENT, '${prefix}', '') AS body FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND EVENT_OBJECT_TABLE = ? ORDER BY EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER`,
    [db, table],
  );
  return rows as { name: string; timing: string; event: string; ord: number; sqlMode: string; definer: string; body: string }[];
}

async function auditOf(conn: mysql.Connection, db: string, audit: string): Promise<{ seq: number; entry: string }[]> {
  const [rows] = await conn.query(`SELECT seq, row_id, what FROM \`${db}\`.\`${audit}\` ORDER BY seq`);
  return (rows as { seq: number; row_id: string; what: string }[]).map((r) => ({ seq: Number(r.seq), entry: `${r.row_id} ${r.what}` }));
}

/**
 * Writer k of n, as a web application with autocommit writes single rows, or, `transactions`, in
 * transactions that each update a row, insert one and delete one (in that order: the first write
 * of a transaction is an UPDATE), one writer's rows never another's.
 */
function writers(db: string, n: number, kind: 'single rows' | 'transactions'): AppWriter[] {
  return Array.from({ length: n }, (_, k) => {
    const next = studentModuleWriter(db, CSM, ROWS, k, n);
    return kind === 'single rows' ? startAppWriter(next, { pauseMillis: 1 }) : startTransactionWriter((i) => [next(3 * i + 1), next(3 * i), next(3 * i + 2)], { pauseMillis: 1 });
  });
}

/**
 * A table with triggers of its own: they keep firing, each exactly once per write of the
 * application, through the copy, the swap and after it, and they end on the altered table as they
 * were (names, order, SQL mode, definer, bodies); ferry's copy never fires them.
 */
describe('ferry local online-alter on a table with triggers of its own', () => {
  it.each([
    [4, 'single rows'],
    [6, 'transactions'],
  ] as const)('fires every trigger once per application write of %i writers writing %s, and leaves them on the altered table in their order', async (n, kind) => {
    const conn = await admin();
    const dbs = await makeDatabases(conn, 'trig');
    const db = dbs.names.trig!;
    try {
      await conn.query(`CREATE TABLE \`${db}\`.${CSM} ${TABLE}; CREATE TABLE \`${db}\`.reference ${TABLE}; SET SESSION max_recursive_iterations = ${ROWS}`);
      await conn.query(`INSERT INTO \`${db}\`.${CSM} (module_id, student_id, state, grade, created, modified, max_grade, course_id)
        WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ${ROWS})
        SELECT CONCAT('block-v1:edX+DemoX+type@problem+block@', n % 500), n DIV 7, CONCAT('{"attempts": ', n % 5, '}'), n % 4,
               TIMESTAMP('2024-01-01') + INTERVAL n SECOND, TIMESTAMP('2024-01-01') + INTERVAL n SECOND, 3, CONCAT('course-v1:edX+DemoX+', n % 7) FROM s`);
      await conn.query(`INSERT INTO \`${db}\`.reference SELECT * FROM \`${db}\`.${CSM}`);
      await makeTriggers(conn, db, CSM, 'audit', 'csm');
      await makeTriggers(conn, db, 'reference', 'audit_ref', 'ref');
      const before = await triggersOf(conn, db, CSM, 'csm');
      expect(before.map((t) => t.name).sort()).toEqual(['_ad', '_ai_first', '_ai_second', '_au', '_bi', '_bu']);

      const dir = tempDir();
      const input = writeJson(dir, 'input.json', {
        migrationId: 'trig-1',
        table: { connection: 'edxapp', database: db, table: CSM },
        alter: 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT',
        throttle: { maxThreadsRunning: 200, waitSeconds: 1 },
        cleanup: { mode: 'none' },
      });
      // the plan says what happens to them
      const plan = JSON.parse((await runFerry(['plan', 'online-alter', '--input', input, '--state-dir', `${dir}/state`, '--json'])).stdout) as { moves: string[] };
      expect(plan.moves.join('\n')).toMatch(/its own triggers csm_bi \(BEFORE INSERT\), csm_ai_first \(AFTER INSERT\), csm_ai_second \(AFTER INSERT\), csm_bu \(BEFORE UPDATE\), csm_au \(AFTER UPDATE\), csm_ad \(AFTER DELETE\) move to the altered table at the swap/);

      // several writers with almost no pause: some of their writes queue on the table while the swap holds it
      const running = writers(db, n, kind);
      const result = await runFerry(['local', 'online-alter', '--input', input, '--state-dir', `${dir}/state`, '--approve', 'all']);
      // and on after the swap, on the altered table
      await new Promise((r) => setTimeout(r, 500));
      const ops = (await Promise.all(running.map((w) => w.stop()))).flat();
      expect(result.code, result.stderr).toBe(0);
      expect(failures(ops)).toEqual([]);
      expect(ops.filter((o) => o.op === 'insert').length).toBeGreaterThan(100);

      // the same writes on the reference fire the reference's triggers: the same effects, once each
      await replayStudentModuleWrites(conn, db, 'reference', ops);
      const [altered, reference] = [await tableContent(conn, db, CSM), await tableContent(conn, db, 'reference')];
      expect({ rows: altered.rows, checksum: altered.checksum }).toEqual({ rows: reference.rows, checksum: reference.checksum });
      const [audit, auditRef] = [await auditOf(conn, db, 'audit'), await auditOf(conn, db, 'audit_ref')];
      expect(audit.length).toBeGreaterThan(200);
      expect(audit.map((a) => a.entry).sort()).toEqual(auditRef.map((a) => a.entry).sort());
      // in their order, and the SQL mode kept: 'i' || 'pro' is 'ipro'
      const firsts = new Map(audit.filter((a) => a.entry.endsWith(' insert first')).map((a) => [a.entry.split(' ')[0], a.seq]));
      const seconds = audit.filter((a) => a.entry.includes(' insert second'));
      expect(seconds.length).toBe(firsts.size);
      for (const a of seconds) {
        expect(a.entry).toMatch(/^\d+ insert second ipro$/);
        expect(firsts.get(a.entry.split(' ')[0])).toBeLessThan(a.seq);
      }

      expect(await triggersOf(conn, db, CSM, 'csm')).toEqual(before);
      expect(await triggersOf(conn, db, `_${CSM}_old`, 'csm')).toEqual([]);
      const [type] = await conn.query('SELECT COLUMN_TYPE AS t FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ?', [db, CSM, 'id']);
      expect((type as { t: string }[])[0]!.t).toBe('bigint(20) unsigned');
    } finally {
      await dbs.drop();
      await conn.end();
    }
  }, 300_000);

  it('refuses with exit 2, before anything is written, an ALTER that drops a column a trigger uses', async () => {
    const conn = await admin();
    const dbs = await makeDatabases(conn, 'trigd');
    const db = dbs.names.trigd!;
    try {
      await conn.query(`CREATE TABLE \`${db}\`.${CSM} ${TABLE}`);
      await conn.query(`INSERT INTO \`${db}\`.${CSM} (module_id, student_id, created, modified, course_id) VALUES ('m', 1, NOW(), NOW(), 'c')`);
      await makeTriggers(conn, db, CSM, 'audit', 'csm');
      const dir = tempDir();
      const input = writeJson(dir, 'input.json', { migrationId: 'trigd-1', table: { connection: 'edxapp', database: db, table: CSM }, alter: 'DROP COLUMN max_grade' });
      const result = await runFerry(['local', 'online-alter', '--input', input, '--state-dir', `${dir}/state`, '--approve', 'all']);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(/alter: trigger csm_bu of the table cannot be made on the altered table, as the swap must: Unknown column 'max_grade' in 'OLD' \(error 1054\)/);
      const [tables] = await conn.query('SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY 1', [db]);
      expect((tables as { t: string }[]).map((r) => r.t)).toEqual(['audit', CSM]);
      expect((await triggersOf(conn, db, CSM, 'csm')).length).toBe(6);
    } finally {
      await dbs.drop();
      await conn.end();
    }
  }, 120_000);
});
