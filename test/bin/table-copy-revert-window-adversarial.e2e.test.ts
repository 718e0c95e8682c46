import type mysql from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { runFerry, startFerry, type Running } from '../helpers/cli.ts';
import { failures, startTransactionWriter, type AppOp, type AppStatement } from '../helpers/app-writer.ts';
import { admin, MYSQL_URL, OTHER_HOST_URL, tableFingerprint } from '../helpers/db.ts';
import { scenario, SRC, TGT, type Scenario } from '../helpers/scenario.ts';

/**
 * Attacks on table-copy's revert window (README, "A way back for table-copy: `ferry revert`": "The
 * revert window", "What it promises", "What it does not promise"): transactions left open across the
 * moment the revert starts, updates that change the id, REPLACE and INSERT … ON DUPLICATE KEY
 * UPDATE, a hot row, a refusal then a revert again, a SIGKILL during the revert under transactions
 * of several statements, a second revert after a second cut-over, and the cleanup closing the window.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CHUNK = { targetMillis: 200, minRows: 50, maxRows: 300 };

async function scalarOf(conn: mysql.Connection, sql: string, params: unknown[] = []): Promise<string | null> {
  const [rows] = await conn.query(sql, params);
  const first = (rows as Record<string, unknown>[])[0];
  return first ? (Object.values(first)[0] === null ? null : String(Object.values(first)[0])) : null;
}

/** Starts the migration with the cut-over approved at once; resolves once it waits for the cleanup approval. */
async function toCleanupApproval(sc: Scenario, input: string, env: NodeJS.ProcessEnv = {}): Promise<Running> {
  const running = startFerry(['local', 'table-copy', '--input', input, '--state-dir', sc.stateDir, '--approve', 'cutover'], env);
  await running.waitFor(/waiting for approval "cleanup"/, 90_000);
  return running;
}

const revert = (sc: Scenario, reason: string, env: NodeJS.ProcessEnv = {}) => runFerry(['revert', sc.input().migrationId as string, '--reason', reason, '--state-dir', sc.stateDir], env);

/** The window's log table in the new table's database (`_ferry_<tag>_log`), null when there is none. */
async function logTable(sc: Scenario): Promise<string | null> {
  const [rows] = await sc.conn.query(`SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME LIKE '\\_ferry\\_%\\_log'`, [sc.tgt]);
  const t = (rows as { t: string }[])[0]?.t;
  return t ? `\`${sc.tgt}\`.\`${t}\`` : null;
}

/** The ids the window's log names, distinct, ascending (as strings). */
async function loggedIds(sc: Scenario): Promise<string[]> {
  const log = await logTable(sc);
  if (!log) throw new Error('no revert window log');
  const [rows] = await sc.conn.query(`SELECT DISTINCT CAST(row_id AS CHAR) AS id FROM ${log} ORDER BY row_id`);
  return (rows as { id: string }[]).map((r) => r.id);
}

/** ferry's triggers on the new table, by event. */
async function ferryTriggers(sc: Scenario): Promise<string[]> {
  const [rows] = await sc.conn.query(
    `SELECT EVENT_MANIPULATION AS e FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ? AND TRIGGER_NAME LIKE '\\_ferry\\_%' ORDER BY e`,
    [sc.tgt, TGT],
  );
  return (rows as { e: string }[]).map((r) => r.e);
}

/** Distinct spans of the delivery ledger holding any of these ids. */
async function spansHolding(sc: Scenario, ids: readonly (number | string)[]): Promise<number> {
  const [rows] = await sc.conn.query(`SELECT COUNT(DISTINCT lo) AS n FROM \`${sc.tgt}\`._ferry_ledger WHERE ${ids.map(() => '(? BETWEEN lo AND hi)').join(' OR ')}`, [...ids]);
  return Number((rows as { n: number }[])[0]!.n);
}

/** Rows of one table that are not in the other with the same content (by id), both ways, for an assertion message. */
async function rowDiff(sc: Scenario, max = 10): Promise<string[]> {
  const cols = `id, version, created, state, grade, max_grade, student_module_id`;
  const [src, tgt] = [`\`${sc.src}\`.${SRC}`, `\`${sc.tgt}\`.${TGT}`];
  const read = async (t: string) => new Map(((await sc.conn.query(`SELECT ${cols} FROM ${t}`))[0] as Record<string, unknown>[]).map((r) => [String(r.id), JSON.stringify(r)]));
  const [o, n] = [await read(src), await read(tgt)];
  const out: string[] = [];
  for (const [id, row] of n) if (o.get(id) !== row) out.push(`id ${id}: new table ${row}, old table ${o.get(id) ?? '(missing)'}`);
  for (const [id, row] of o) if (!n.has(id)) out.push(`id ${id}: only in the old table ${row}`);
  return out.slice(0, max);
}

describe("table-copy's revert window, attacked", () => {
  it.each([
    ['with the revert window', true],
    ['without it (revertWindow false, every span compared: the control)', false],
  ])("a transaction (insert, update, delete) left open across the moment the revert starts and committed after it, %s: its update and delete stay in the log (looked at with the window), and a second revert after a second cut-over carries all three writes back to the old table", async (_how, window) => {
    const sc = await scenario({ rows: 1500 });
    const tx = await admin();
    try {
      const src = `\`${sc.src}\`.${SRC}`;
      const tgt = `\`${sc.tgt}\`.${TGT}`;
      const input = sc.inputFile({ chunk: CHUNK, revertWindow: window });
      const first = await toCleanupApproval(sc, input);

      // the application: one transaction left open (its insert takes the lower id)…
      await tx.query('START TRANSACTION');
      const [ins] = await tx.query(`INSERT INTO ${tgt} (created, student_module_id, state) VALUES (NOW(6), 1, 'open-insert')`);
      const openId = String((ins as { insertId: number }).insertId);
      await tx.query(`UPDATE ${tgt} SET state = 'open-update' WHERE id = 10`);
      await tx.query(`DELETE FROM ${tgt} WHERE id = 20`);
      // …while others commit: an insert above it, an update in another span
      const [ins2] = await sc.conn.query(`INSERT INTO ${tgt} (created, student_module_id, state) VALUES (NOW(6), 2, 'committed-insert')`);
      const committedId = String((ins2 as { insertId: number }).insertId);
      expect(BigInt(committedId)).toBeGreaterThan(BigInt(openId));
      await sc.conn.query(`UPDATE ${tgt} SET state = 'committed-update' WHERE id = 1200`);

      const taken = await revert(sc, 'open transaction');
      expect(taken.code, taken.stderr).toBe(0);
      const r1 = await first.done;
      expect(r1.code, r1.stderr.slice(-1500)).toBe(0);
      expect(r1.last).toMatchObject({ outcome: 'reverted', reverted: { compared: window ? 'the spans the revert window logged' : 'every span' } });
      expect(await scalarOf(sc.conn, `SELECT state FROM ${src} WHERE id = ?`, [committedId]), 'the committed insert carried').toBe('committed-insert');
      expect(await scalarOf(sc.conn, `SELECT state FROM ${src} WHERE id = 1200`), 'the committed update carried').toBe('committed-update');

      // the transaction commits after the revert: not promised for this revert, but for the next one
      await tx.query('COMMIT');
      if (window) expect(await loggedIds(sc), "the open transaction's update and delete are still in the log").toEqual(expect.arrayContaining(['10', '20']));

      // the same input cuts over again; the application asks for a second revert
      const again = await toCleanupApproval(sc, input);
      const inNew = await tableFingerprint(sc.conn, sc.tgt, TGT);
      const taken2 = await revert(sc, 'second');
      expect(taken2.code, taken2.stderr).toBe(0);
      const r2 = await again.done;
      expect(r2.code, r2.stderr.slice(-1500)).toBe(0);
      expect(r2.last).toMatchObject({ outcome: 'reverted' });
      expect(await scalarOf(sc.conn, `SELECT state FROM ${src} WHERE id = 10`), 'the update of the transaction').toBe('open-update');
      expect(await scalarOf(sc.conn, `SELECT COUNT(*) FROM ${src} WHERE id = 20`), 'the delete of the transaction').toBe('0');
      expect(
        await scalarOf(sc.conn, `SELECT state FROM ${src} WHERE id = ?`, [openId]),
        `the insert of the transaction (id ${openId}, committed before the second revert was asked for) is in the old table`,
      ).toBe('open-insert');
      expect(await tableFingerprint(sc.conn, sc.src, SRC), `the old table holds what the new one holds: ${(await rowDiff(sc)).join('\n')}`).toEqual(inNew);
    } finally {
      await tx.query('ROLLBACK').catch(() => undefined);
      await tx.end().catch(() => undefined);
      await sc.close();
    }
  }, 120_000);

  it('updates that change the id (up above the ledger, down into an id freed), REPLACE INTO, INSERT … ON DUPLICATE KEY UPDATE (changing a row, and changing its id), a hot row updated 300 times, a multi-row update and a range delete: the revert compares only the spans they fall in, and the old table ends exactly as the new one', async () => {
    const sc = await scenario({ rows: 3000 });
    try {
      const tgt = `\`${sc.tgt}\`.${TGT}`;
      const input = sc.inputFile({ chunk: CHUNK });
      const running = await toCleanupApproval(sc, input);
      const spans = Number(await scalarOf(sc.conn, `SELECT COUNT(*) FROM \`${sc.tgt}\`._ferry_ledger`));
      expect(spans, 'many spans').toBeGreaterThan(8);

      for (let i = 0; i < 300; i++) await sc.conn.query(`UPDATE ${tgt} SET grade = ?, state = ? WHERE id = 50`, [i, `hot ${i}`]);
      await sc.conn.query(`UPDATE ${tgt} SET id = id + 1000000, state = 'moved up' WHERE id = 100`);
      await sc.conn.query(`DELETE FROM ${tgt} WHERE id = 400`);
      await sc.conn.query(`UPDATE ${tgt} SET id = 400, state = 'moved down' WHERE id = 1600`);
      await sc.conn.query(`REPLACE INTO ${tgt} (id, created, student_module_id, state) VALUES (700, NOW(6), 7, 'replaced')`);
      await sc.conn.query(`INSERT INTO ${tgt} (id, created, student_module_id, state) VALUES (900, NOW(6), 9, 'x') ON DUPLICATE KEY UPDATE state = 'odku', grade = 9.5`);
      await sc.conn.query(`INSERT INTO ${tgt} (id, created, student_module_id, state) VALUES (1100, NOW(6), 11, 'x') ON DUPLICATE KEY UPDATE id = id + 2000000, state = 'odku moved'`);
      await sc.conn.query(`UPDATE ${tgt} SET grade = 42 WHERE id BETWEEN 2000 AND 2050`);
      await sc.conn.query(`DELETE FROM ${tgt} WHERE id BETWEEN 2990 AND 2995`);
      await sc.conn.query(`INSERT INTO ${tgt} (created, student_module_id, state) SELECT NOW(6), id, 'app-new' FROM ${tgt} WHERE id <= 30`);
      const touched = await spansHolding(sc, [50, 100, 400, 1600, 700, 900, 1100, 2000, 2050, 2990, 2995]);
      expect(touched).toBeLessThan(spans);
      const inNew = await tableFingerprint(sc.conn, sc.tgt, TGT);

      const taken = await revert(sc, 'many kinds of writes');
      expect(taken.code, taken.stderr).toBe(0);
      const run = await running.done;
      expect(run.code, run.stderr.slice(-1500)).toBe(0);
      expect(run.last).toMatchObject({ outcome: 'reverted', reverted: { compared: 'the spans the revert window logged' } });
      expect(await tableFingerprint(sc.conn, sc.src, SRC), `the old table holds what the new one holds: ${(await rowDiff(sc)).join('\n')}`).toEqual(inNew);
      expect((run.last as { reverted: { spansCompared: number } }).reverted.spansCompared, 'only the spans the writes fall in were compared').toBe(touched);
    } finally {
      await sc.close();
    }
  }, 90_000);

  it('entries are forgotten once what they name is carried: after a revert nobody wrote during, the log is empty, also for updates of rows the application inserted above the ledger and rows moved above it', async () => {
    const sc = await scenario({ rows: 900 });
    try {
      const tgt = `\`${sc.tgt}\`.${TGT}`;
      const running = await toCleanupApproval(sc, sc.inputFile({ chunk: CHUNK }));
      await sc.conn.query(`UPDATE ${tgt} SET state = 'edited' WHERE id = 5`);
      await sc.conn.query(`INSERT INTO ${tgt} (created, student_module_id, state) SELECT NOW(6), id, 'app-new' FROM ${tgt} WHERE id <= 10`);
      const [mine] = (await sc.conn.query(`SELECT CAST(MIN(id) AS CHAR) AS id FROM ${tgt} WHERE state = 'app-new'`))[0] as { id: string }[];
      await sc.conn.query(`UPDATE ${tgt} SET grade = 1 WHERE id = ?`, [mine!.id]);
      await sc.conn.query(`UPDATE ${tgt} SET id = id + 1000000 WHERE id = 6`);
      const inNew = await tableFingerprint(sc.conn, sc.tgt, TGT);
      const taken = await revert(sc, 'quiet');
      expect(taken.code, taken.stderr).toBe(0);
      const run = await running.done;
      expect(run.code, run.stderr.slice(-1500)).toBe(0);
      expect(run.last).toMatchObject({ outcome: 'reverted' });
      expect(await tableFingerprint(sc.conn, sc.src, SRC)).toEqual(inNew);
      expect(await loggedIds(sc), 'no entry left for what was carried').toEqual([]);
    } finally {
      await sc.close();
    }
  }, 90_000);

  it('a revert refused on an id past the old table\'s INT (UPDATE SET id = 3000000000) keeps that entry in the log; the application writes on, the old table is widened, and a revert again leaves the old table exactly as the new one', async () => {
    const sc = await scenario({ rows: 1500 });
    try {
      const src = `\`${sc.src}\`.${SRC}`;
      const tgt = `\`${sc.tgt}\`.${TGT}`;
      const migrationId = sc.input().migrationId as string;
      const prefix = `/ferry/${migrationId}/flags/`;
      const running = await toCleanupApproval(sc, sc.inputFile({ chunk: CHUNK }));
      const cutOver = sc.flags();
      await sc.conn.query(`UPDATE ${tgt} SET state = 'before' WHERE id = 10`);
      await sc.conn.query(`UPDATE ${tgt} SET id = 3000000000 WHERE id = 20`);
      await sc.conn.query(`UPDATE ${tgt} SET state = 'far' WHERE id = 1400`);
      await sc.conn.query(`INSERT INTO ${tgt} (created, student_module_id, state) SELECT NOW(6), id, 'app-new' FROM ${tgt} WHERE id <= 5`);
      expect((await revert(sc, 'try')).code).toBe(0);
      await running.waitFor(/revert refused: [^\n]*id 3000000000: Out of range value for column 'id'[\s\S]*waiting for approval "cleanup"/, 60_000);
      expect(sc.flags(), 'no flag changed').toEqual(cutOver);
      expect(await loggedIds(sc), 'the refused id is still logged').toContain('3000000000');

      // the application writes on: rows of spans carried before the refusal, and more
      await sc.conn.query(`UPDATE ${tgt} SET state = 'after the refusal' WHERE id = 10`);
      await sc.conn.query(`DELETE FROM ${tgt} WHERE id IN (21, 1401)`);
      await sc.conn.query(`UPDATE ${tgt} SET grade = 3 WHERE id = 3000000000`);
      await sc.conn.query(`INSERT INTO ${tgt} (created, student_module_id, state) VALUES (NOW(6), 1, 'later')`);
      await sc.conn.query(`ALTER TABLE ${src} MODIFY id bigint NOT NULL AUTO_INCREMENT`);
      const inNew = await tableFingerprint(sc.conn, sc.tgt, TGT);
      expect((await revert(sc, 'widened')).code).toBe(0);
      const run = await running.done;
      expect(run.code, run.stderr.slice(-1500)).toBe(0);
      expect(run.last).toMatchObject({ outcome: 'reverted', reverted: { compared: 'the spans the revert window logged' } });
      expect(sc.flags()[`${prefix}ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`]).toBe('true');
      expect(await tableFingerprint(sc.conn, sc.src, SRC), `the old table holds what the new one holds: ${(await rowDiff(sc)).join('\n')}`).toEqual(inNew);
    } finally {
      await sc.close();
    }
  }, 90_000);

  it('a SIGKILL at a random moment of the revert while transactions of several statements (update, delete, insert) run throughout: the same command finishes it, none of the transactions fails, the old table holds every transaction committed before the revert was asked for; a run after it to done (trickle-delete) closes the window, empties the old table and leaves the new one exactly as the application left it', async () => {
    const sc = await scenario({ rows: 3000 });
    try {
      const src = `\`${sc.src}\`.${SRC}`;
      const tgt = `\`${sc.tgt}\`.${TGT}`;
      const gate = `\`${sc.src}\`.gate`;
      await sc.conn.query(`CREATE TABLE ${gate} (v int NOT NULL); INSERT INTO ${gate} VALUES (1)`);
      const ref = `\`${sc.src}\`.reference`;
      // held once a span was carried, while the gate is shut
      const held = sc.inputFile({ chunk: CHUNK, throttle: { maxThreadsRunning: 200, waitSeconds: 1, query: `SELECT COUNT(*) FROM ${src} WHERE state LIKE 'tx%' AND (SELECT v FROM ${gate}) = 1` } });
      const first = await toCleanupApproval(sc, held);
      await sc.conn.query(`CREATE TABLE ${ref} LIKE ${tgt}; INSERT INTO ${ref} SELECT * FROM ${tgt}`);

      const app = startTransactionWriter((i): AppStatement[] => [
        { op: 'update', sql: `UPDATE ${tgt} SET state = ?, grade = ? WHERE id = ?`, params: [`tx ${i}`, i, 1 + ((i * 613) % 3000)] },
        { op: 'delete', sql: `DELETE FROM ${tgt} WHERE id = ?`, params: [1 + ((i * 977 + 11) % 3000)] },
        { op: 'insert', sql: `INSERT INTO ${tgt} (created, state, student_module_id) VALUES ('2025-01-01', 'app', ?)`, params: [i] },
        { op: 'update', sql: `UPDATE ${tgt} SET grade = ? WHERE id = ?`, params: [i + 0.5, 1 + ((i * 389 + 7) % 3000)] },
      ], { pauseMillis: 5 });
      await sleep(2000);
      const askedAt = performance.timeOrigin + performance.now();
      const opsAtAsk = app.ops.length;
      const taken = await revert(sc, 'random kill');
      expect(taken.code, taken.stderr).toBe(0);
      await first.waitFor(/throttled/, 60_000);
      await sc.conn.query(`UPDATE ${gate} SET v = 0`);
      await sleep(Math.floor(Math.random() * 800));
      first.child.kill('SIGKILL');
      const killed = await first.done;
      const second = await runFerry(['local', 'table-copy', '--input', sc.inputFile({ chunk: CHUNK }), '--state-dir', sc.stateDir, '--approve', 'cutover']);
      expect(second.code, second.stderr.slice(-1500)).toBe(0);
      expect(second.last, `killed: ${killed.stderr.slice(-600)}`).toMatchObject({ outcome: 'reverted', reverted: { compared: 'the spans the revert window logged' } });
      const oldSnap = `\`${sc.src}\`.old_after_revert`;
      await sc.conn.query(`CREATE TABLE ${oldSnap} LIKE ${src}; INSERT INTO ${oldSnap} SELECT * FROM ${src}`);

      // to the end while the transactions go on: the cut-over again, the cleanup
      const done = await runFerry(['local', 'table-copy', '--input', sc.inputFile({ chunk: CHUNK }), '--state-dir', sc.stateDir, '--approve', 'all']);
      await sleep(300);
      const ops = await app.stop();
      expect(failures(ops), "none of the application's statements failed").toEqual([]);
      expect(done.code, done.stderr.slice(-2000)).toBe(0);
      expect(done.last).toMatchObject({ phase: 'done', outcome: 'done' });
      expect(await ferryTriggers(sc), 'the window closed').toEqual([]);
      expect(await logTable(sc), 'its log dropped').toBeNull();
      expect((await tableFingerprint(sc.conn, sc.src, SRC)).rows, 'the old table emptied').toBe('0');

      // the reference: the seed with every committed transaction replayed in order
      const txs: AppOp[][] = [];
      let cur: AppOp[] = [];
      for (const o of ops) {
        cur.push(o);
        if (o.op === 'commit' || o.error) {
          if (o.op === 'commit' && !o.error) txs.push(cur);
          cur = [];
        }
      }
      const replay = async (table: string, which: AppOp[][]) => {
        for (const t of which) {
          for (const o of t) {
            if (o.op === 'insert') await sc.conn.query(`INSERT INTO ${table} (id, created, state, student_module_id) VALUES (?, '2025-01-01', 'app', ?)`, [o.insertId, ...o.params]);
            else if (o.op === 'update' && o.params.length === 3) await sc.conn.query(`UPDATE ${table} SET state = ?, grade = ? WHERE id = ?`, o.params as unknown[]);
            else if (o.op === 'update') await sc.conn.query(`UPDATE ${table} SET grade = ? WHERE id = ?`, o.params as unknown[]);
            else if (o.op === 'delete') await sc.conn.query(`DELETE FROM ${table} WHERE id = ?`, o.params as unknown[]);
          }
        }
      };
      const before = `\`${sc.src}\`.before_ask`;
      await sc.conn.query(`CREATE TABLE ${before} LIKE ${ref}; INSERT INTO ${before} SELECT * FROM ${ref}`);
      await replay(ref, txs);
      expect(await tableFingerprint(sc.conn, sc.tgt, TGT), 'the new table exactly as the application left it').toEqual(await tableFingerprint(sc.conn, sc.src, 'reference'));

      // the old table when the flags went back: every transaction committed before the ask, as last written
      const commitsBefore = txs.filter((t) => t[t.length - 1]!.startedAt + t[t.length - 1]!.millis < askedAt);
      expect(commitsBefore.length, 'transactions committed before the ask').toBeGreaterThan(30);
      await replay(before, commitsBefore);
      const idsOf = (o: AppOp) => String(o.op === 'insert' ? o.insertId : o.params[o.params.length - 1]);
      const later = [...new Set(ops.slice(Math.max(0, opsAtAsk - 8)).filter((o) => o.op !== 'commit').map(idsOf))];
      const strip = (t: string) => `DELETE FROM ${t} WHERE id IN (${later.join(', ')})`;
      await sc.conn.query(`${strip(before)}; ${strip(oldSnap)}`);
      expect(await tableFingerprint(sc.conn, sc.src, 'old_after_revert'), 'the old table holds every transaction committed before the revert was asked for').toEqual(
        await tableFingerprint(sc.conn, sc.src, 'before_ask'),
      );
    } finally {
      await sc.close();
    }
  }, 150_000);

  it('across two servers: an id moved above the ledger, a hot row, REPLACE, deletes and inserts carried back by the window alone; an update made after the revert stays logged; a run to done closes the window on the new server and leaves the new table as the application left it', async () => {
    const sc = await scenario({ rows: 1500 });
    const env = { FERRY_MYSQL_EDXAPP: MYSQL_URL, FERRY_MYSQL_CSMH: OTHER_HOST_URL };
    try {
      const tgt = `\`${sc.tgt}\`.${TGT}`;
      const input = sc.inputFile({ chunk: CHUNK });
      const running = await toCleanupApproval(sc, input, env);
      for (let i = 0; i < 100; i++) await sc.conn.query(`UPDATE ${tgt} SET grade = ? WHERE id = 33`, [i]);
      await sc.conn.query(`UPDATE ${tgt} SET id = id + 1000000, state = 'moved up' WHERE id = 700`);
      await sc.conn.query(`REPLACE INTO ${tgt} (id, created, student_module_id, state) VALUES (1100, NOW(6), 7, 'replaced')`);
      await sc.conn.query(`DELETE FROM ${tgt} WHERE id IN (2, 1499)`);
      await sc.conn.query(`INSERT INTO ${tgt} (created, student_module_id, state) SELECT NOW(6), id, 'app-new' FROM ${tgt} WHERE id <= 40`);
      const touched = await spansHolding(sc, [33, 700, 1100, 2, 1499]);
      const inNew = await tableFingerprint(sc.conn, sc.tgt, TGT);
      const taken = await revert(sc, 'two servers', env);
      expect(taken.code, taken.stderr).toBe(0);
      const run = await running.done;
      expect(run.code, run.stderr.slice(-1500)).toBe(0);
      expect(run.last).toMatchObject({ outcome: 'reverted', reverted: { compared: 'the spans the revert window logged', spansCompared: touched } });
      expect(await tableFingerprint(sc.conn, sc.src, SRC), `the old table holds what the new one holds: ${(await rowDiff(sc)).join('\n')}`).toEqual(inNew);

      await sc.conn.query(`UPDATE ${tgt} SET state = 'after the revert' WHERE id = 34`);
      expect(await loggedIds(sc), 'the update after the revert is logged').toContain('34');
      const left = await tableFingerprint(sc.conn, sc.tgt, TGT);
      const done = await runFerry(['local', 'table-copy', '--input', input, '--state-dir', sc.stateDir, '--approve', 'all'], env);
      expect(done.code, done.stderr.slice(-2000)).toBe(0);
      expect(done.last).toMatchObject({ phase: 'done', outcome: 'done' });
      expect(await ferryTriggers(sc)).toEqual([]);
      expect(await logTable(sc)).toBeNull();
      expect((await tableFingerprint(sc.conn, sc.src, SRC)).rows).toBe('0');
      expect(await tableFingerprint(sc.conn, sc.tgt, TGT), 'the new table as the application left it').toEqual(left);
    } finally {
      await sc.close();
    }
  }, 90_000);
});
