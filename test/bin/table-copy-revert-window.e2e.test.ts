import { describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import { runFerry, startFerry } from '../helpers/cli.ts';
import { failures, startAppWriter, type AppStatement } from '../helpers/app-writer.ts';
import { tableFingerprint } from '../helpers/db.ts';
import { scenario, SRC, TGT } from '../helpers/scenario.ts';

/** ferry's triggers on a table (the revert window's, named `_ferry_<tag>_upd`/`_del`), by event. */
async function ferryTriggers(conn: Connection, database: string, table: string): Promise<string[]> {
  const [rows] = await conn.query(
    `SELECT EVENT_MANIPULATION AS e FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ? AND TRIGGER_NAME LIKE '\\_ferry\\_%' ORDER BY e`,
    [database, table],
  );
  return (rows as { e: string }[]).map((r) => r.e);
}

/** ferry's log tables in a database (the window's log is `_ferry_<tag>_log`), each with its entries. */
async function logs(conn: Connection, database: string): Promise<number[]> {
  const [tables] = await conn.query(`SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME LIKE '\\_ferry\\_%\\_log'`, [database]);
  const out: number[] = [];
  for (const { t } of tables as { t: string }[]) {
    const [rows] = await conn.query(`SELECT COUNT(*) AS n FROM \`${database}\`.\`${t}\``);
    out.push(Number((rows as { n: number }[])[0]!.n));
  }
  return out;
}

/** Spans of the delivery ledger holding these ids. */
async function spansOf(conn: Connection, database: string, ids: readonly number[]): Promise<number> {
  const [rows] = await conn.query(`SELECT COUNT(DISTINCT lo) AS n FROM \`${database}\`._ferry_ledger WHERE ${ids.map(() => '(? BETWEEN lo AND hi)').join(' OR ')}`, [...ids]);
  return Number((rows as { n: number }[])[0]!.n);
}

describe("table-copy's revert window: from the copy flags until the cleanup, the ids the application updates or deletes in the new table are logged", () => {
  it('opens at the copy flags with nothing of the copy logged, lets the revert compare only the spans the application changed, carries everything back, keeps logging after the revert, and closes with the cleanup', async () => {
    const sc = await scenario({ rows: 6000 });
    try {
      const migrationId = sc.input().migrationId as string;
      const [src, tgt] = [`\`${sc.src}\`.${SRC}`, `\`${sc.tgt}\`.${TGT}`];
      const input = sc.inputFile({ chunk: { targetMillis: 200, minRows: 50, maxRows: 300 } });
      const running = startFerry(['local', 'table-copy', '--input', input, '--state-dir', sc.stateDir, '--approve', 'cutover']);
      await running.waitFor(/waiting for approval "cleanup"/, 120_000);
      expect(running.stderr()).toMatch(/flags of phase copy set: [^\n]*; revert window open: until the cleanup, triggers on \S+ log the id of each row the application updates or deletes there and inserts from id \d+ up/);
      expect(await ferryTriggers(sc.conn, sc.tgt, TGT), "the window's triggers on the new table").toEqual(['DELETE', 'INSERT', 'UPDATE']);
      expect(await ferryTriggers(sc.conn, sc.src, SRC), 'none on the old table').toEqual([]);
      expect(await logs(sc.conn, sc.tgt), "ferry's copy, verification and sweep logged nothing").toEqual([0]);
      const [ledger] = await sc.conn.query(`SELECT COUNT(*) AS spans FROM \`${sc.tgt}\`._ferry_ledger`);
      expect(Number((ledger as { spans: number }[])[0]!.spans), 'a ledger of many spans').toBeGreaterThan(10);

      // the application, in the new table alone since the cut-over
      await sc.conn.query(`UPDATE ${tgt} SET state = 'edited' WHERE id IN (5, 4500); DELETE FROM ${tgt} WHERE id = 7`);
      await sc.conn.query(`INSERT INTO ${tgt} (created, student_module_id, state) VALUES (NOW(6), 1, 'new'), (NOW(6), 2, 'new')`);
      const touched = await spansOf(sc.conn, sc.tgt, [5, 7, 4500]);
      expect(await logs(sc.conn, sc.tgt), 'two updates, a deletion and two inserts').toEqual([5]);
      const stats = await runFerry(['stats', '--input', input]);
      expect(stats.code, stats.stderr).toBe(0);
      expect(JSON.parse(stats.stdout).oldTable, stats.stdout).toMatch(
        /^old table: \S+ lacks the 2 rows the application inserted in \S+ since the copy flags \(ids above \d+\), and 3 rows it updated or deleted among the ids copied are named by the revert window's log \(the oldest of those writes at [0-9-]+ [0-9:]+, the writer's clock\): ferry revert compares the spans they fall in$/,
      );

      const taken = await runFerry(['revert', migrationId, '--reason', 'slow reads', '--state-dir', sc.stateDir]);
      expect(taken.code, taken.stderr).toBe(0);
      const run = await running.done;
      expect(run.code, run.stderr).toBe(0);
      expect(run.last, run.stdout).toMatchObject({
        outcome: 'reverted',
        reverted: { compared: 'the spans the revert window logged', logEntries: 5, spansCompared: touched, rowsCarried: 5 },
      });
      expect(await tableFingerprint(sc.conn, sc.src, SRC), 'the old table holds what the new one holds').toEqual(await tableFingerprint(sc.conn, sc.tgt, TGT));
      expect(await logs(sc.conn, sc.tgt), 'the entries carried are forgotten').toEqual([0]);

      // the window stays open after the revert: the application still writes the new table alone
      expect(await ferryTriggers(sc.conn, sc.tgt, TGT)).toEqual(['DELETE', 'INSERT', 'UPDATE']);
      await sc.conn.query(`UPDATE ${tgt} SET state = 'after the revert' WHERE id = 100`);
      expect(await logs(sc.conn, sc.tgt)).toEqual([1]);

      // the same input later, to the end: the cleanup closes the window before it deletes anything
      const done = await runFerry(['local', 'table-copy', '--input', input, '--state-dir', sc.stateDir, '--approve', 'all']);
      expect(done.code, done.stderr).toBe(0);
      expect(done.last).toMatchObject({ phase: 'done', revertWindow: expect.stringMatching(/^closed at /) });
      expect(done.stderr).toMatch(/revert window closed: ferry's triggers dropped from \S+, and their log/);
      expect(await ferryTriggers(sc.conn, sc.tgt, TGT)).toEqual([]);
      expect(await logs(sc.conn, sc.tgt)).toEqual([]);
      expect((await tableFingerprint(sc.conn, sc.src, SRC)).rows).toBe('0');
      const [[edited]] = (await sc.conn.query(`SELECT state FROM ${tgt} WHERE id = 100`)) as unknown as [{ state: string }[]];
      expect(edited!.state).toBe('after the revert');
    } finally {
      await sc.close();
    }
  }, 240_000);

  it("with the application writing throughout and a SIGKILL half-way through the logged spans, the same command finishes the revert: none of the application's writes failed, and the old table holds every row it wrote before the revert was asked for", async () => {
    const sc = await scenario({ rows: 6000 });
    try {
      const migrationId = sc.input().migrationId as string;
      const [src, tgt] = [`\`${sc.src}\`.${SRC}`, `\`${sc.tgt}\`.${TGT}`];
      const prefix = `/ferry/${migrationId}/flags/`;
      const chunk = { targetMillis: 200, minRows: 50, maxRows: 300 };
      // holds the revert once it has carried a span back: a moment to kill it in
      const held = sc.inputFile({ chunk, throttle: { waitSeconds: 1, query: `SELECT COUNT(*) FROM ${src} WHERE state LIKE 'edited%'` } });
      const first = startFerry(['local', 'table-copy', '--input', held, '--state-dir', sc.stateDir, '--approve', 'cutover']);
      await first.waitFor(/waiting for approval "cleanup"/, 120_000);
      const cutOver = () => sc.flags()[`${prefix}ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`] === 'false';
      expect(cutOver()).toBe(true);
      // the application: updates and deletions spread over the whole table, and inserts, until after the revert
      const app = startAppWriter((i): AppStatement => {
        if (i % 3 === 0) return { op: 'insert', sql: `INSERT INTO ${tgt} (created, state, student_module_id) VALUES ('2025-01-01', 'app', ?)`, params: [i] };
        if (i % 7 === 1) return { op: 'delete', sql: `DELETE FROM ${tgt} WHERE id = ?`, params: [1 + ((i * 977) % 6000)] };
        return { op: 'update', sql: `UPDATE ${tgt} SET state = ?, grade = ? WHERE id = ?`, params: [`edited ${i}`, i, 1 + ((i * 613) % 6000)] };
      }, { pauseMillis: 3 });
      await new Promise((r) => setTimeout(r, 1500));
      const taken = await runFerry(['revert', migrationId, '--reason', 'slow', '--state-dir', sc.stateDir]);
      expect(taken.code, taken.stderr).toBe(0);
      const askedAt = app.ops.length;
      await first.waitFor(/throttled/, 60_000);
      first.child.kill('SIGKILL');
      await first.done;
      expect(cutOver(), 'killed before the flags went back').toBe(true);
      const [carried] = await sc.conn.query(`SELECT COUNT(*) AS n FROM ${src} WHERE state LIKE 'edited%'`);
      expect(Number((carried as { n: number }[])[0]!.n), 'killed after some of the spans were carried').toBeGreaterThan(0);

      const second = await runFerry(['local', 'table-copy', '--input', sc.inputFile({ chunk }), '--state-dir', sc.stateDir, '--approve', 'cutover']);
      expect(second.code, second.stderr).toBe(0);
      expect(second.last).toMatchObject({ outcome: 'reverted', reverted: { compared: 'the spans the revert window logged' } });
      expect(cutOver()).toBe(false);
      const ops = await app.stop();
      expect(failures(ops)).toEqual([]);
      for (const op of ['insert', 'update', 'delete']) expect(ops.filter((o) => o.op === op).length, op).toBeGreaterThan(10);

      // every row the application wrote before the revert was asked for is in the old table as it last wrote it (what it
      // wrote later too, unless written after the revert compared its span: those stay logged for the next revert)
      const [oldRows] = await sc.conn.query(`SELECT CAST(id AS CHAR) AS id, state, grade FROM ${src}`);
      const old = new Map((oldRows as { id: string; state: string; grade: number | null }[]).map((r) => [r.id, r]));
      // the application's rows as it left them before asking (null: deleted; seeded rows hold ids 1 to 6000)
      const wrote = new Map<string, { state: string; grade: number | null } | null>();
      for (const o of ops.slice(0, askedAt)) {
        if (o.error) continue;
        if (o.op === 'insert') wrote.set(o.insertId!, { state: 'app', grade: null });
        else if (o.op === 'delete') wrote.set(String(o.params[0]), null);
        else {
          const id = String(o.params[2]);
          const there = wrote.has(id) ? wrote.get(id) !== null : Number(id) <= 6000;
          if (there) wrote.set(id, { state: String(o.params[0]), grade: Number(o.params[1]) });
        }
      }
      const laterIds = new Set(ops.slice(askedAt).map((o) => (o.op === 'insert' ? String(o.insertId) : String(o.op === 'delete' ? o.params[0] : o.params[2]))));
      const wrong: string[] = [];
      for (const [id, w] of wrote) {
        if (laterIds.has(id)) continue;
        const row = old.get(id);
        if (w === null ? row !== undefined : row?.state !== w.state || (w.grade !== null && Number(row?.grade) !== w.grade)) wrong.push(`${id}: wrote ${JSON.stringify(w)}, the old table has ${JSON.stringify(row ?? null)}`);
      }
      expect(wrote.size, 'rows the application wrote before asking').toBeGreaterThan(50);
      expect(wrong).toEqual([]);
    } finally {
      await sc.close();
    }
  }, 240_000);

  it('a window a person broke (a trigger dropped by hand) is not trusted: the revert says so, compares every span, and loses nothing', async () => {
    const sc = await scenario({ rows: 1500 });
    try {
      const migrationId = sc.input().migrationId as string;
      const tgt = `\`${sc.tgt}\`.${TGT}`;
      const running = startFerry(['local', 'table-copy', '--input', sc.inputFile(), '--state-dir', sc.stateDir, '--approve', 'cutover']);
      await running.waitFor(/waiting for approval "cleanup"/, 120_000);
      const [trigs] = await sc.conn.query(`SELECT TRIGGER_NAME AS n FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ? AND EVENT_MANIPULATION = 'UPDATE'`, [sc.tgt, TGT]);
      await sc.conn.query(`DROP TRIGGER \`${sc.tgt}\`.\`${(trigs as { n: string }[])[0]!.n}\``);
      // an update the log never hears of
      await sc.conn.query(`UPDATE ${tgt} SET state = 'unlogged' WHERE id = 900`);
      const taken = await runFerry(['revert', migrationId, '--reason', 'slow', '--state-dir', sc.stateDir]);
      expect(taken.code, taken.stderr).toBe(0);
      const run = await running.done;
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toMatch(/comparing every span of the ledger, then the rows inserted: the revert window opened at \S+ is no longer whole on \S+ \(a trigger or its log was dropped\)/);
      expect(run.last).toMatchObject({ outcome: 'reverted', reverted: { compared: 'every span', rowsCarried: 1 } });
      expect(await tableFingerprint(sc.conn, sc.src, SRC)).toEqual(await tableFingerprint(sc.conn, sc.tgt, TGT));
    } finally {
      await sc.close();
    }
  }, 240_000);

  it('ferry abandon takes the window off the new table (the run stopped says it stays until then), changes nothing else, and a revert after it compares every span and loses nothing', async () => {
    const sc = await scenario({ rows: 1500 });
    try {
      const migrationId = sc.input().migrationId as string;
      const tgt = `\`${sc.tgt}\`.${TGT}`;
      const args = ['local', 'table-copy', '--input', sc.inputFile(), '--state-dir', sc.stateDir, '--approve', 'cutover'];
      const first = startFerry(args);
      await first.waitFor(/waiting for approval "cleanup"/, 120_000);
      first.child.kill('SIGINT');
      const stopped = await first.done;
      expect(stopped.stderr).toMatch(/the revert window stays on \S+: ferry's triggers log the id of each row the application writes there\. Run the same command again to resume, or take them back with: npx ferry abandon /);
      const flags = sc.flags();
      const [before] = await sc.conn.query(`SELECT phase, state FROM \`${sc.tgt}\`._ferry_checkpoints WHERE migration_id = ?`, [migrationId]);

      const abandoned = await runFerry(['abandon', migrationId, '--state-dir', sc.stateDir]);
      expect(abandoned.code, abandoned.stderr).toBe(0);
      expect(JSON.parse(abandoned.stdout)).toMatchObject({ abandoned: true, note: expect.stringMatching(/^the revert window's triggers and log were dropped from \S+: nothing of ferry's is on it now/) });
      expect(await ferryTriggers(sc.conn, sc.tgt, TGT)).toEqual([]);
      expect(await logs(sc.conn, sc.tgt)).toEqual([]);
      expect(sc.flags(), 'the flags as they were').toEqual(flags);
      const [after] = await sc.conn.query(`SELECT phase, state FROM \`${sc.tgt}\`._ferry_checkpoints WHERE migration_id = ?`, [migrationId]);
      const [was, is] = [(before as { phase: string; state: string }[])[0]!, (after as { phase: string; state: string }[])[0]!];
      expect(is.phase).toBe(was.phase);
      expect(JSON.parse(is.state).window).toMatchObject({ openedAt: JSON.parse(was.state).window.openedAt, closedBy: 'ferry abandon' });
      const again = await runFerry(['abandon', migrationId, '--state-dir', sc.stateDir]);
      expect(again.code, again.stderr).toBe(0);
      expect(JSON.parse(again.stdout).note).toMatch(/^nothing of \S+ is on \S+ \(no revert window\)/);

      // the application changes a row nobody logs now; the run resumed and reverted finds it by comparing every span
      await sc.conn.query(`UPDATE ${tgt} SET state = 'after the abandon' WHERE id = 1200`);
      const second = startFerry(args);
      await second.waitFor(/waiting for approval "cleanup"/, 60_000);
      expect(await ferryTriggers(sc.conn, sc.tgt, TGT), 'a resumed run puts no window back').toEqual([]);
      const taken = await runFerry(['revert', migrationId, '--reason', 'slow', '--state-dir', sc.stateDir]);
      expect(taken.code, taken.stderr).toBe(0);
      const run = await second.done;
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toMatch(/comparing every span of the ledger, then the rows inserted: the revert window was closed at \S+ by ferry abandon/);
      expect(run.last).toMatchObject({ outcome: 'reverted', reverted: { compared: 'every span', rowsCarried: 1 } });
      expect(await tableFingerprint(sc.conn, sc.src, SRC)).toEqual(await tableFingerprint(sc.conn, sc.tgt, TGT));
    } finally {
      await sc.close();
    }
  }, 240_000);

  it('revertWindow false makes no trigger, and says so in the plan', async () => {
    const sc = await scenario({ rows: 300 });
    try {
      const input = sc.inputFile({ revertWindow: false });
      const plan = await runFerry(['plan', 'table-copy', '--input', input, '--json']);
      expect(plan.code, plan.stderr).toBe(0);
      expect(JSON.parse(plan.stdout).moves).toContain('revert window: none (revertWindow false: ferry revert compares every span of the ledger)');
      const withWindow = await runFerry(['plan', 'table-copy', '--input', sc.inputFile(), '--json']);
      expect(JSON.parse(withWindow.stdout).moves.join('\n')).toMatch(/revert window: from the copy flags until the cleanup, triggers _ferry_[0-9a-f]{12}_upd, _ferry_[0-9a-f]{12}_del, _ferry_[0-9a-f]{12}_ins on /);
      const running = startFerry(['local', 'table-copy', '--input', input, '--state-dir', sc.stateDir, '--approve', 'cutover']);
      await running.waitFor(/waiting for approval "cleanup"/, 120_000);
      expect(await ferryTriggers(sc.conn, sc.tgt, TGT)).toEqual([]);
      running.child.kill('SIGKILL');
      await running.done;
    } finally {
      await sc.close();
    }
  }, 240_000);
});
