import type mysql from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { runFerry, startFerry, tempDir, writeJson, type Running } from '../helpers/cli.ts';
import { failures, startAppWriter, type AppOp, type AppStatement } from '../helpers/app-writer.ts';
import { admin, makeDatabases, tableFingerprint } from '../helpers/db.ts';
import { scenario, SRC, TGT, type Scenario } from '../helpers/scenario.ts';

/**
 * Attacks on what the README promises of `ferry revert` for a table-copy waiting for its cleanup
 * approval ("### A way back for table-copy: `ferry revert`"): an application writing the new table
 * all along, re-runs and cleanups after a revert, a second revert, SIGKILLs, refusals, an extra
 * column in the new table, partitions and gaps in the ids.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function scalarOf(conn: mysql.Connection, sql: string, params: unknown[] = []): Promise<string | null> {
  const [rows] = await conn.query(sql, params);
  const first = (rows as Record<string, unknown>[])[0];
  return first ? (Object.values(first)[0] === null ? null : String(Object.values(first)[0])) : null;
}

/** Starts the migration with the cut-over approved at once; resolves once it waits for the cleanup approval. */
async function toCleanupApproval(sc: Scenario, input: string): Promise<Running> {
  const running = startFerry(['local', 'table-copy', '--input', input, '--state-dir', sc.stateDir, '--approve', 'cutover']);
  await running.waitFor(/waiting for approval "cleanup"/, 90_000);
  return running;
}

const revert = (sc: Scenario, reason: string) => runFerry(['revert', sc.input().migrationId as string, '--reason', reason, '--state-dir', sc.stateDir]);

/** Whether a run ends by itself (true) or asks for the cleanup approval again (false, e.g. a refused revert). */
async function endsWithoutAsking(run: Running, timeout = 60_000): Promise<boolean> {
  const asked = run.waitFor(/waiting for approval "cleanup"/, timeout).then(() => false, () => true);
  return Promise.race([run.done.then(() => true), asked]);
}

/**
 * Writer k of `writers` on the history table: inserts rows of its own, updates and deletes seeded
 * rows with ids ≡ k (mod writers) only, so replaying the writers one after the other gives what
 * they did together.
 */
function historyWriter(table: string, k: number, writers: number, seeded: number): (i: number) => AppStatement {
  return (i) => {
    const j = (i * 7919 + k * 104729) % Math.floor((seeded - k) / writers);
    const id = k + writers * j;
    switch (i % 3) {
      case 0:
        return { op: 'insert', sql: `INSERT INTO ${table} (created, state, student_module_id) VALUES ('2025-01-01', ?, ?)`, params: [`w${k}-${i}`, k * 100000 + i] };
      case 1:
        return { op: 'update', sql: `UPDATE ${table} SET grade = ?, state = ? WHERE id = ?`, params: [i, `u${k}-${i}`, id] };
      default:
        return { op: 'delete', sql: `DELETE FROM ${table} WHERE id = ?`, params: [id] };
    }
  };
}

/** Replays the writers' successful statements on `table`, writer after writer. */
async function replayHistory(conn: mysql.Connection, table: string, perWriter: readonly AppOp[][]): Promise<void> {
  for (const ops of perWriter) {
    for (const o of ops) {
      if (o.error) continue;
      if (o.op === 'insert') await conn.query(`INSERT INTO ${table} (id, created, state, student_module_id) VALUES (?, '2025-01-01', ?, ?)`, [o.insertId, ...o.params]);
      else if (o.op === 'update') await conn.query(`UPDATE ${table} SET grade = ?, state = ? WHERE id = ?`, o.params as unknown[]);
      else if (o.op === 'delete') await conn.query(`DELETE FROM ${table} WHERE id = ?`, o.params as unknown[]);
    }
  }
}

/** The ids a statement touched. */
const idOf = (o: AppOp) => String(o.op === 'insert' ? o.insertId : o.params[o.params.length - 1]);

describe('ferry revert of a table-copy, attacked', () => {
  it("three writers (single rows, autocommit, no retry) insert, update and delete in the new table before, during and after the revert: none fails, the old table holds every write made before the revert was asked, and a run after it with cleanup \"truncate\" ends done with the new table exactly as the application left it", async () => {
    const sc = await scenario({ rows: 2000 });
    try {
      const src = `\`${sc.src}\`.${SRC}`;
      const tgt = `\`${sc.tgt}\`.${TGT}`;
      const input = sc.inputFile({ cleanup: { mode: 'truncate' } });
      const running = await toCleanupApproval(sc, input);
      // the reference: what the new table holds before the application writes (the seed), then every write replayed
      const ref = `\`${sc.src}\`.reference`;
      await sc.conn.query(`CREATE TABLE ${ref} LIKE ${tgt}; INSERT INTO ${ref} SELECT * FROM ${tgt}`);
      const W = 3;
      const writers = Array.from({ length: W }, (_, k) => startAppWriter(historyWriter(tgt, k + 1, W, 2000), { pauseMillis: 8 }));
      await sleep(2500);
      const askedAt = Date.now();
      const taken = await revert(sc, 'slow under load');
      expect(taken.code, taken.stderr).toBe(0);
      const run = await running.done;
      expect(run.code, run.stderr.slice(-2000)).toBe(0);
      expect(run.last).toMatchObject({ outcome: 'reverted', phase: 'reverted' });
      const oldSnap = `\`${sc.src}\`.old_after_revert`;
      await sc.conn.query(`CREATE TABLE ${oldSnap} LIKE ${src}; INSERT INTO ${oldSnap} SELECT * FROM ${src}`);

      // a run of the same input while the application still writes the new table: the cut-over again, then "truncate"
      const retry = await runFerry(['local', 'table-copy', '--input', input, '--state-dir', sc.stateDir, '--approve', 'all']);
      await sleep(500);
      const perWriter = await Promise.all(writers.map((w) => w.stop()));
      const ops = perWriter.flat();
      expect(failures(ops), 'none of the application\'s writes failed').toEqual([]);
      expect(retry.code, retry.stderr.slice(-3000)).toBe(0);
      expect(retry.last).toMatchObject({ phase: 'done', outcome: 'done' });
      for (const op of ['insert', 'update', 'delete']) expect(ops.filter((o) => o.op === op && o.startedAt < askedAt).length, op).toBeGreaterThan(20);
      expect(ops.filter((o) => o.startedAt > askedAt + 3000).length, 'the application wrote during and after the revert').toBeGreaterThan(20);

      await replayHistory(sc.conn, ref, perWriter);
      expect(await tableFingerprint(sc.conn, sc.tgt, TGT), 'the new table is exactly as the application left it').toEqual(await tableFingerprint(sc.conn, sc.src, 'reference'));
      expect((await tableFingerprint(sc.conn, sc.src, SRC)).rows, 'the old table truncated').toBe('0');

      // the old table when the flags went back: every row written before the revert was asked, as last written
      const late = [...new Set(ops.filter((o) => o.startedAt >= askedAt).map(idOf))];
      const without = (table: string) => `CREATE TABLE \`${sc.src}\`.${table}_before LIKE ${tgt}; INSERT INTO \`${sc.src}\`.${table}_before SELECT * FROM \`${sc.src}\`.${table} WHERE id NOT IN (${late.join(', ')})`;
      await sc.conn.query(`${without('old_after_revert')}; ${without('reference')}`);
      const before = await tableFingerprint(sc.conn, sc.src, 'reference_before');
      expect(await tableFingerprint(sc.conn, sc.src, 'old_after_revert_before'), 'the old table holds every write made before the revert was asked').toEqual(before);
    } finally {
      await sc.close();
    }
  }, 90_000);

  /*
   * FAILS (kept failing on purpose). The second run does not finish the revert; it refuses it and asks for
   * the cleanup approval again:
   *   "revert refused: courseware_studentmodulehistory cannot take rows of coursewarehistoryextended_…:
   *    courseware_studentmodulehistory holds rows above what was delivered that are not in
   *    coursewarehistoryextended_…: id 3225, id 3224 (written to courseware_studentmodulehistory after the sweep)."
   * Cause: step 2 of the revert (lambdas/table-copy/revert.ts:164, `above`) writes a piece to the old table in
   * one transaction (carryBack) and records it in the ledger afterwards (revert.ts:168/171, then r.aboveAfter at
   * :173), in another transaction on another server possibly. A run killed in between leaves the piece's rows in
   * the old table, above the ledger. The next run carries the same piece again with `delivered: false`, and
   * lambdas/core/tables/carry-back.ts:130-133 takes any row of the old table there that differs from (or is gone
   * from) the new table for a row written to the old table after the sweep, and refuses. The application's update
   * and delete of that piece's rows in the new table (it keeps writing there) make them differ.
   * Suggested fix: note the piece in the checkpoint before it is carried (r.abovePiece = { after, hi }, saved),
   * and carry a noted piece with `delivered: true` on the next run (the old table's rows in it are ferry's own
   * writes); or record the ledger span in the same transaction as the carry when both are on one server. Key
   * ledgers (revert.ts:168) have the same gap.
   */
  it("finishes a revert SIGKILLed after a piece of the application's inserts was written to the old table and before the ledger recorded it, when the application updated a row of that piece meanwhile (the same command finishes it, README \"Faults\")", async () => {
    const sc = await scenario({ rows: 1000 });
    const lockConn = await admin();
    try {
      const migrationId = sc.input().migrationId as string;
      const prefix = `/ferry/${migrationId}/flags/`;
      const src = `\`${sc.src}\`.${SRC}`;
      const tgt = `\`${sc.tgt}\`.${TGT}`;
      const gate = `\`${sc.src}\`.gate`;
      await sc.conn.query(`CREATE TABLE ${gate} (v int NOT NULL); INSERT INTO ${gate} VALUES (0)`);
      // holds the revert once its first piece of inserted rows is in the old table, while the gate is shut
      const held = sc.inputFile({ throttle: { waitSeconds: 1, query: `SELECT COUNT(*) FROM ${src} WHERE state = 'app-new' AND (SELECT v FROM ${gate}) = 1` } });
      const first = await toCleanupApproval(sc, held);
      // 2,500 rows the application inserted in the new table: pieces of 1,000, 1,000 and 500 above the ledger
      await sc.conn.query(`INSERT INTO ${tgt} (created, student_module_id, state) SELECT NOW(6), id, 'app-new' FROM ${tgt} WHERE id <= 1000`);
      await sc.conn.query(`INSERT INTO ${tgt} (created, student_module_id, state) SELECT NOW(6), id, 'app-new' FROM ${tgt} WHERE id <= 1000`);
      await sc.conn.query(`INSERT INTO ${tgt} (created, student_module_id, state) SELECT NOW(6), id, 'app-new' FROM ${tgt} WHERE id <= 500`);
      await sc.conn.query(`UPDATE ${gate} SET v = 1`);
      const taken = await revert(sc, 'slow');
      expect(taken.code, taken.stderr).toBe(0);
      await first.waitFor(/throttled/, 60_000);
      expect(Number(await scalarOf(sc.conn, `SELECT COUNT(*) FROM ${src} WHERE state = 'app-new'`)), 'held after the first piece').toBe(1000);

      // the ledger's rows locked: the next piece is written to the old table, and its record waits
      await lockConn.query('START TRANSACTION');
      await lockConn.query(`SELECT * FROM \`${sc.tgt}\`._ferry_ledger WHERE migration_id = ? FOR UPDATE`, [migrationId]);
      await sc.conn.query(`UPDATE ${gate} SET v = 0`);
      const deadline = Date.now() + 30_000;
      while (Number(await scalarOf(sc.conn, `SELECT COUNT(*) FROM ${src} WHERE state = 'app-new'`)) < 2000 && Date.now() < deadline) await sleep(100);
      expect(Number(await scalarOf(sc.conn, `SELECT COUNT(*) FROM ${src} WHERE state = 'app-new'`)), 'the second piece written to the old table').toBe(2000);
      await sleep(300);
      first.child.kill('SIGKILL');
      await first.done;
      const [waiting] = await sc.conn.query(`SELECT ID AS id FROM information_schema.PROCESSLIST WHERE INFO LIKE ? AND ID <> CONNECTION_ID()`, [`%${sc.tgt}%_ferry_ledger%`]);
      expect((waiting as unknown[]).length, 'the ledger record was waiting').toBeGreaterThan(0);
      for (const w of waiting as { id: string }[]) await sc.conn.query(`KILL ${Number(w.id)}`).catch(() => undefined);
      await lockConn.query('ROLLBACK');

      // the application, meanwhile, updates a row of that piece and deletes another (in the new table, as always)
      const ids = (await sc.conn.query(`SELECT id FROM ${tgt} WHERE state = 'app-new' ORDER BY id LIMIT 2 OFFSET 1200`))[0] as { id: string }[];
      await sc.conn.query(`UPDATE ${tgt} SET grade = 77 WHERE id = ?`, [ids[0]!.id]);
      await sc.conn.query(`DELETE FROM ${tgt} WHERE id = ?`, [ids[1]!.id]);

      const second = startFerry(['local', 'table-copy', '--input', sc.inputFile(), '--state-dir', sc.stateDir, '--approve', 'cutover']);
      expect(await endsWithoutAsking(second), `the same command finishes the revert, without asking for the cleanup approval again:\n${second.stderr().slice(-1500)}`).toBe(true);
      const run = await second.done;
      expect(run.code, run.stderr.slice(-1500)).toBe(0);
      expect(run.last).toMatchObject({ outcome: 'reverted', phase: 'reverted' });
      expect(sc.flags()[`${prefix}ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`]).toBe('true');
      const old = await tableFingerprint(sc.conn, sc.src, SRC);
      expect(Number(old.rows)).toBeGreaterThanOrEqual(3499);
      expect(Number(await scalarOf(sc.conn, `SELECT COUNT(*) FROM ${src} WHERE state = 'app-new' AND id > ?`, [ids[1]!.id])), 'the rows after the piece carried').toBeGreaterThan(1000);
    } finally {
      await lockConn.query('ROLLBACK').catch(() => undefined);
      await lockConn.end().catch(() => undefined);
      await sc.close();
    }
  }, 120_000);

  it('reverts a second time after a run of the same input cut over again (rows carried by the first revert updated and deleted, more inserted), and a third run goes to done through the trickle-delete with the new table as the application left it', async () => {
    const sc = await scenario({ rows: 1200 });
    try {
      const migrationId = sc.input().migrationId as string;
      const prefix = `/ferry/${migrationId}/flags/`;
      const tgt = `\`${sc.tgt}\`.${TGT}`;
      const input = sc.inputFile();
      const first = await toCleanupApproval(sc, input);
      await sc.conn.query(`INSERT INTO ${tgt} (created, student_module_id, state) SELECT NOW(6), id, 'first' FROM ${tgt} WHERE id <= 300`);
      await sc.conn.query(`UPDATE ${tgt} SET state = 'edited once' WHERE id IN (4, 600, 1199); DELETE FROM ${tgt} WHERE id IN (5, 601)`);
      expect((await revert(sc, 'one')).code).toBe(0);
      const r1 = await first.done;
      expect(r1.code, r1.stderr.slice(-1500)).toBe(0);
      expect(r1.last).toMatchObject({ outcome: 'reverted' });
      expect(await tableFingerprint(sc.conn, sc.src, SRC)).toEqual(await tableFingerprint(sc.conn, sc.tgt, TGT));

      const again = await toCleanupApproval(sc, input);
      expect(sc.flags()[`${prefix}ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`], 'cut over again').toBe('false');
      // rows the first revert carried (inserted by the application) updated and deleted; more inserted; seeded rows changed
      const carried = ((await sc.conn.query(`SELECT id FROM ${tgt} WHERE state = 'first' ORDER BY id`))[0] as { id: string }[]).map((r) => r.id);
      await sc.conn.query(`UPDATE ${tgt} SET state = 'edited twice', grade = 2 WHERE id IN (?, ?, 4)`, [carried[0], carried[299]]);
      await sc.conn.query(`DELETE FROM ${tgt} WHERE id IN (?, ?, 6)`, [carried[1], carried[150]]);
      await sc.conn.query(`INSERT INTO ${tgt} (created, student_module_id, state) SELECT NOW(6), id, 'second' FROM ${tgt} WHERE id <= 200`);
      const inNew = await tableFingerprint(sc.conn, sc.tgt, TGT);
      expect((await revert(sc, 'two')).code).toBe(0);
      const r2 = await again.done;
      expect(r2.code, r2.stderr.slice(-1500)).toBe(0);
      expect(r2.last).toMatchObject({ outcome: 'reverted', reverted: { askedBy: expect.stringContaining('two') } });
      expect(sc.flags()[`${prefix}ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`], 'the flags back again').toBe('true');
      expect(await tableFingerprint(sc.conn, sc.src, SRC), 'the old table holds what the new one holds').toEqual(inNew);

      await sc.conn.query(`UPDATE ${tgt} SET grade = 3 WHERE id IN (7, ?); DELETE FROM ${tgt} WHERE id IN (8, ?)`, [carried[2], carried[3]]);
      const left = await tableFingerprint(sc.conn, sc.tgt, TGT);
      const third = await runFerry(['local', 'table-copy', '--input', input, '--state-dir', sc.stateDir, '--approve', 'all']);
      expect(third.code, third.stderr.slice(-2000)).toBe(0);
      expect(third.last).toMatchObject({ phase: 'done', outcome: 'done' });
      expect(await tableFingerprint(sc.conn, sc.tgt, TGT)).toEqual(left);
      expect((await tableFingerprint(sc.conn, sc.src, SRC)).rows).toBe('0');
    } finally {
      await sc.close();
    }
  }, 120_000);

  it('reverts into an old table that lacks a column of the new one (the common columns carried, the new column kept in the new table), and a run after it ends done keeping it', async () => {
    const sc = await scenario({ rows: 800 });
    try {
      const tgt = `\`${sc.tgt}\`.${TGT}`;
      await sc.conn.query(`ALTER TABLE ${tgt} ADD COLUMN note varchar(20) NULL DEFAULT 'dflt'`);
      const input = sc.inputFile();
      const running = await toCleanupApproval(sc, input);
      await sc.conn.query(`UPDATE ${tgt} SET note = 'only the note' WHERE id = 5`);
      await sc.conn.query(`UPDATE ${tgt} SET state = 'edited', note = 'both' WHERE id = 6`);
      await sc.conn.query(`INSERT INTO ${tgt} (created, student_module_id, state, note) VALUES (NOW(6), 1, 'app-new', 'new note'), (NOW(6), 2, 'app-new', NULL)`);
      await sc.conn.query(`DELETE FROM ${tgt} WHERE id = 7`);
      const inNew = await tableFingerprint(sc.conn, sc.tgt, TGT);
      const notes = async () => (await sc.conn.query(`SELECT id, note FROM ${tgt} ORDER BY id`))[0];
      const notesBefore = await notes();
      expect((await revert(sc, 'extra column')).code).toBe(0);
      const run = await running.done;
      expect(run.code, run.stderr.slice(-1500)).toBe(0);
      expect(run.last).toMatchObject({ outcome: 'reverted', reverted: { rowsCarried: 4 } });
      expect(await tableFingerprint(sc.conn, sc.src, SRC), 'the common columns').toEqual(inNew);
      const retry = await runFerry(['local', 'table-copy', '--input', input, '--state-dir', sc.stateDir, '--approve', 'all']);
      expect(retry.code, retry.stderr.slice(-2000)).toBe(0);
      expect(retry.last).toMatchObject({ phase: 'done' });
      expect(await tableFingerprint(sc.conn, sc.tgt, TGT)).toEqual(inNew);
      expect(await notes(), "the new table's own column as the application left it").toEqual(notesBefore);
    } finally {
      await sc.close();
    }
  }, 90_000);

  it.each([
    ['', false],
    [' (a write transaction open on the server since before the run: the low water unknown, every hole of the ledger kept)', true],
  ])('reverts a table with gaps in its ids copied in 2 partitions, the application having written rows into the gaps inside spans delivered, and a run after it goes to done through the trickle-delete%s', async (_, held) => {
    const sc = await scenario({ rows: 2000, step: 3n });
    // another session's write transaction, open throughout: ferry cannot tell which holes are final, and keeps them all
    const holder = held ? await admin() : null;
    try {
      if (holder) {
        await holder.query(`CREATE TABLE \`${sc.src}\`.held (id int PRIMARY KEY)`);
        await holder.query('START TRANSACTION');
        await holder.query(`INSERT INTO \`${sc.src}\`.held VALUES (1)`);
      }
      const tgt = `\`${sc.tgt}\`.${TGT}`;
      const input = sc.inputFile({ partitions: 2 });
      const running = await toCleanupApproval(sc, input);
      // ids 2, 3000, 5999 are gaps of the old table inside the ledger's spans; 6001 .. 6999 lie between its top and the new table's AUTO_INCREMENT
      await sc.conn.query(`INSERT INTO ${tgt} (id, created, student_module_id, state) VALUES (2, NOW(6), 1, 'gap'), (3000, NOW(6), 2, 'gap'), (5999, NOW(6), 3, 'gap'), (6500, NOW(6), 4, 'gap')`);
      await sc.conn.query(`INSERT INTO ${tgt} (created, student_module_id, state) SELECT NOW(6), id, 'app-new' FROM ${tgt} WHERE id <= 1500`);
      await sc.conn.query(`UPDATE ${tgt} SET grade = 5 WHERE id IN (1, 2998, 5998); DELETE FROM ${tgt} WHERE id IN (4, 3001)`);
      const inNew = await tableFingerprint(sc.conn, sc.tgt, TGT);
      expect((await revert(sc, 'gaps')).code).toBe(0);
      const run = await running.done;
      expect(run.code, run.stderr.slice(-1500)).toBe(0);
      expect(run.last).toMatchObject({ outcome: 'reverted' });
      expect(await tableFingerprint(sc.conn, sc.src, SRC)).toEqual(inNew);
      // after the revert the application deletes a row carried into a gap and updates another
      await sc.conn.query(`DELETE FROM ${tgt} WHERE id = 3000; UPDATE ${tgt} SET state = 'gap, edited' WHERE id = 2`);
      const left = await tableFingerprint(sc.conn, sc.tgt, TGT);
      const retry = await runFerry(['local', 'table-copy', '--input', input, '--state-dir', sc.stateDir, '--approve', 'all']);
      expect(retry.code, retry.stderr.slice(-2000)).toBe(0);
      expect(retry.last).toMatchObject({ phase: 'done' });
      expect(await tableFingerprint(sc.conn, sc.tgt, TGT)).toEqual(left);
      expect((await tableFingerprint(sc.conn, sc.src, SRC)).rows).toBe('0');
    } finally {
      await holder?.query('ROLLBACK').catch(() => undefined);
      await holder?.end().catch(() => undefined);
      await sc.close();
    }
  }, 90_000);

  it('a revert refused after part of the inserted rows was carried (a value the old table cannot take), then the cleanup approved: it ends done, deleting what was carried from the old table and losing nothing of the new one', async () => {
    const sc = await scenario({ rows: 800 });
    try {
      const migrationId = sc.input().migrationId as string;
      const prefix = `/ferry/${migrationId}/flags/`;
      const src = `\`${sc.src}\`.${SRC}`;
      const tgt = `\`${sc.tgt}\`.${TGT}`;
      await sc.conn.query(`ALTER TABLE ${src} MODIFY version varchar(8) NULL`);
      const running = await toCleanupApproval(sc, sc.inputFile());
      const cutOver = sc.flags();
      await sc.conn.query(`UPDATE ${tgt} SET state = 'edited' WHERE id = 5`);
      await sc.conn.query(`INSERT INTO ${tgt} (created, student_module_id, state, version) SELECT NOW(6), id, 'app-new', 'ok' FROM ${tgt} WHERE id <= 800`);
      await sc.conn.query(`INSERT INTO ${tgt} (created, student_module_id, state, version) SELECT NOW(6), id, 'app-new', 'ok' FROM ${tgt} WHERE id <= 700`);
      const [bad] = (await sc.conn.query(`SELECT id FROM ${tgt} WHERE state = 'app-new' ORDER BY id LIMIT 1 OFFSET 1200`))[0] as { id: string }[];
      await sc.conn.query(`UPDATE ${tgt} SET version = 'far too long for the old table' WHERE id = ?`, [bad!.id]);
      expect((await revert(sc, 'try')).code).toBe(0);
      await running.waitFor(new RegExp(`revert refused: .*id ${bad!.id}: Data (too long|truncated) for column 'version'`), 60_000);
      await running.waitFor(/revert refused[\s\S]*waiting for approval "cleanup"/, 60_000);
      expect(sc.flags(), 'no flag changed').toEqual(cutOver);
      expect(Number(await scalarOf(sc.conn, `SELECT COUNT(*) FROM ${src} WHERE state = 'app-new'`)), 'the first piece carried').toBe(1000);
      // the application goes on: a carried row deleted, another updated, one more inserted
      const carried = ((await sc.conn.query(`SELECT id FROM ${src} WHERE state = 'app-new' ORDER BY id LIMIT 2`))[0] as { id: string }[]).map((r) => r.id);
      await sc.conn.query(`DELETE FROM ${tgt} WHERE id = ?; UPDATE ${tgt} SET grade = 9 WHERE id = ?`, carried);
      await sc.conn.query(`INSERT INTO ${tgt} (created, student_module_id, state) VALUES (NOW(6), 1, 'later')`);
      const left = await tableFingerprint(sc.conn, sc.tgt, TGT);
      const approved = await runFerry(['approve', migrationId, '--step', 'cleanup', '--state-dir', sc.stateDir]);
      expect(approved.code, approved.stderr).toBe(0);
      const run = await running.done;
      expect(run.code, run.stderr.slice(-2000)).toBe(0);
      expect(run.last).toMatchObject({ phase: 'done', outcome: 'done' });
      expect(await tableFingerprint(sc.conn, sc.tgt, TGT), 'the new table as the application left it').toEqual(left);
      expect((await tableFingerprint(sc.conn, sc.src, SRC)).rows).toBe('0');
      expect(sc.flags()[`${prefix}ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`]).toBe('false');
    } finally {
      await sc.close();
    }
  }, 90_000);

  it('a revert refused in the ledger\'s spans (an update the old table cannot take) reverts once the old table is widened, and a run after it with cleanup "truncate" ends done', async () => {
    const sc = await scenario({ rows: 800 });
    try {
      const src = `\`${sc.src}\`.${SRC}`;
      const tgt = `\`${sc.tgt}\`.${TGT}`;
      await sc.conn.query(`ALTER TABLE ${src} MODIFY version varchar(8) NULL`);
      const input = sc.inputFile({ cleanup: { mode: 'truncate' } });
      const running = await toCleanupApproval(sc, input);
      await sc.conn.query(`UPDATE ${tgt} SET state = 'edited' WHERE id = 5`);
      await sc.conn.query(`UPDATE ${tgt} SET version = 'far too long for the old table' WHERE id = 700`);
      await sc.conn.query(`INSERT INTO ${tgt} (created, student_module_id, state) SELECT NOW(6), id, 'app-new' FROM ${tgt} WHERE id <= 50`);
      expect((await revert(sc, 'try')).code).toBe(0);
      await running.waitFor(/revert refused: .*id 700: Data too long for column 'version'[\s\S]*waiting for approval "cleanup"/, 60_000);
      await sc.conn.query(`ALTER TABLE ${src} MODIFY version varchar(255) NULL`);
      await sc.conn.query(`DELETE FROM ${tgt} WHERE id = 6`);
      const inNew = await tableFingerprint(sc.conn, sc.tgt, TGT);
      expect((await revert(sc, 'widened')).code).toBe(0);
      const run = await running.done;
      expect(run.code, run.stderr.slice(-1500)).toBe(0);
      expect(run.last).toMatchObject({ outcome: 'reverted' });
      expect(await tableFingerprint(sc.conn, sc.src, SRC)).toEqual(inNew);
      const retry = await runFerry(['local', 'table-copy', '--input', input, '--state-dir', sc.stateDir, '--approve', 'all']);
      expect(retry.code, retry.stderr.slice(-2000)).toBe(0);
      expect(retry.last).toMatchObject({ phase: 'done' });
      expect(await tableFingerprint(sc.conn, sc.tgt, TGT)).toEqual(inNew);
      expect((await tableFingerprint(sc.conn, sc.src, SRC)).rows).toBe('0');
    } finally {
      await sc.close();
    }
  }, 90_000);

  it('reverts a table keyed by (varchar, int) while a writer inserts keys between and above the spans and updates and deletes rows, before and during the revert: none of its writes fails, the old table holds every row written before the revert was asked, and a run after it goes to done', async () => {
    const conn = await admin();
    const dbs = await makeDatabases(conn, 'edxapp', 'csmh');
    try {
      const [src, tgt] = [dbs.names.edxapp!, dbs.names.csmh!];
      for (const db of [src, tgt]) await conn.query(`CREATE TABLE \`${db}\`.t (name varchar(40) COLLATE utf8mb4_unicode_ci NOT NULL, seq int NOT NULL, v varchar(64) NOT NULL, n int NOT NULL, PRIMARY KEY (name, seq)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
      const seed: unknown[][] = [];
      for (let i = 0; i < 2400; i++) seed.push([`user-${String(i % 400).padStart(4, '0')}`, Math.floor(i / 400) * 10, `seed-${i}`, i]);
      await conn.query(`INSERT INTO \`${src}\`.t (name, seq, v, n) VALUES ?`, [seed]);
      const dir = tempDir();
      const stateDir = `${dir}/state`;
      const migrationId = `k-${src.slice(-12)}`;
      const input = writeJson(dir, 'input.json', {
        migrationId,
        source: { connection: 'edxapp', database: src, table: 't' },
        target: { connection: 'csmh', database: tgt, table: 't' },
        catchUp: { quietSeconds: 1, pollSeconds: 1 },
        chunk: { targetMillis: 50, minRows: 50, maxRows: 200 },
        throttle: { maxThreadsRunning: 200, waitSeconds: 1 },
        flags: { copy: { WRITE_NEW: 'true' }, cutover: { READ_NEW: 'true' } },
        cleanup: { mode: 'trickle-delete', batchRows: 500 },
      });
      const running = startFerry(['local', 'table-copy', '--input', input, '--state-dir', stateDir, '--approve', 'cutover']);
      await running.waitFor(/waiting for approval "cleanup"/, 90_000);
      const spans = Number(await scalarOf(conn, `SELECT COUNT(*) FROM \`${tgt}\`._ferry_key_ledger WHERE migration_id = ?`, [migrationId]));
      expect(spans, 'several spans').toBeGreaterThan(5);
      const t = `\`${tgt}\`.t`;
      // keys between the seeded ones (seq + 5, inside spans), above them all (user-9…), and seeded rows changed and deleted
      const writer = startAppWriter((i): AppStatement => {
        const name = `user-${String((i * 37) % 400).padStart(4, '0')}`;
        switch (i % 4) {
          case 0:
            return { op: 'insert', sql: `INSERT INTO ${t} (name, seq, v, n) VALUES (?, ?, 'between', ?)`, params: [name, 5 + 10 * (i % 6) + 100 * Math.floor(i / 24), i] };
          case 1:
            return { op: 'insert', sql: `INSERT INTO ${t} (name, seq, v, n) VALUES (?, ?, 'above', ?)`, params: [`user-9${String(i).padStart(5, '0')}`, i, i] };
          case 2:
            return { op: 'update', sql: `UPDATE ${t} SET v = ?, n = ? WHERE name = ? AND seq = ?`, params: [`updated-${i}`, i, name, 10 * (i % 6)] };
          default:
            return { op: 'delete', sql: `DELETE FROM ${t} WHERE name = ? AND seq = ?`, params: [`user-${String((i * 53) % 400).padStart(4, '0')}`, 10 * ((i + 3) % 6)] };
        }
      }, { pauseMillis: 5 });
      await sleep(2500);
      const askedAt = Date.now();
      const taken = await runFerry(['revert', migrationId, '--reason', 'slow', '--state-dir', stateDir]);
      expect(taken.code, taken.stderr).toBe(0);
      const run = await running.done;
      expect(run.code, run.stderr.slice(-1500)).toBe(0);
      expect(run.last).toMatchObject({ outcome: 'reverted' });
      await sleep(500);
      const ops = await writer.stop();
      expect(failures(ops)).toEqual([]);
      expect(ops.filter((o) => o.startedAt < askedAt && o.op === 'insert').length).toBeGreaterThan(20);
      const keyOf = (o: AppOp) => (o.op === 'update' ? `${o.params[2]}|${o.params[3]}` : `${o.params[0]}|${o.params[1]}`);
      const late = new Set(ops.filter((o) => o.startedAt >= askedAt).map(keyOf));
      const contents = async (db: string) => ((await conn.query(`SELECT CONCAT_WS('|', name, seq, v, n) AS r FROM \`${db}\`.t ORDER BY name, seq`))[0] as { r: string }[]).map((r) => r.r).filter((r) => !late.has(r.split('|').slice(0, 2).join('|')));
      const inNew = await contents(tgt);
      expect(inNew.some((r) => r.includes('|between|'))).toBe(true);
      const inOld = await contents(src);
      const onlyOld = inOld.filter((r) => !inNew.includes(r));
      const onlyNew = inNew.filter((r) => !inOld.includes(r));
      expect({ onlyOld: onlyOld.slice(0, 8), onlyNew: onlyNew.slice(0, 8), counts: [onlyOld.length, onlyNew.length] }, 'the old table holds every row written before the revert was asked, as last written').toEqual({ onlyOld: [], onlyNew: [], counts: [0, 0] });

      const left = ((await conn.query(`SELECT CONCAT_WS('|', name, seq, v, n) AS r FROM ${t} ORDER BY name, seq`))[0] as { r: string }[]).map((r) => r.r);
      const retry = await runFerry(['local', 'table-copy', '--input', input, '--state-dir', stateDir, '--approve', 'all']);
      expect(retry.code, retry.stderr.slice(-2000)).toBe(0);
      expect(retry.last).toMatchObject({ phase: 'done' });
      expect(((await conn.query(`SELECT CONCAT_WS('|', name, seq, v, n) AS r FROM ${t} ORDER BY name, seq`))[0] as { r: string }[]).map((r) => r.r)).toEqual(left);
      expect(Number(await scalarOf(conn, `SELECT COUNT(*) FROM \`${src}\`.t`))).toBe(0);
    } finally {
      await dbs.drop();
      await conn.end();
    }
  }, 90_000);
});
