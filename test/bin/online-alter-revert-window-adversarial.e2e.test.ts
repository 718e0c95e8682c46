import { describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { runFerry, startFerry, type CliResult, type Running } from '../helpers/cli.ts';
import { failures, startAppWriter, startTransactionWriter, studentModuleWrites, studentModuleWriter, type AppOp, type AppStatement, type AppWriter } from '../helpers/app-writer.ts';
import { CSM, tableContent, type AlterScenario } from '../helpers/alter-scenario.ts';
import { askRevert, cutOver, endCutOver, expectEveryWriteAfterRevert, expectOriginalWithEveryWrite, expectReverted, MAX_ID, REVERT_ROWS, stopWriters, type CutOver } from '../helpers/alter-revert.ts';
import { admin } from '../helpers/db.ts';
import { captureNames, revertId, windowNames } from '../../lambdas/core/tables/shadow.ts';

/**
 * An adversarial reader's attempts at online-alter's revert window (README, "A way back for
 * online-alter: ferry revert"): the window's triggers from the swap on, a revert that reads its
 * log, a refused revert that gives the window back, SIGKILLs, and the cleanup that closes it.
 * Every database made here has a role starting with `adv`.
 */

/** cutOver (test/helpers/alter-revert.ts) in a database of this file's own role. */
function advCutOver(role: string, writers: (sc: AlterScenario) => AppWriter[], alter: string, input: Record<string, unknown> = {}): Promise<CutOver> {
  return cutOver(writers, alter, input, role);
}

/** Writers 0 … used-1 of `of`: ids ≡ used … of-1 (mod of) are left to the test's own statements. */
const writing = (used: number, of: number, pauseMillis: number) => (sc: { db: string }) =>
  Array.from({ length: used }, (_, k) => startAppWriter(studentModuleWriter(sc.db, CSM, MAX_ID, k, of), { pauseMillis }));

/** Either the run ends, or it says the revert was refused (for the n-th time) and waits for the cleanup approval again. */
async function revertOutcome(running: Running, n = 1): Promise<{ refused: string | null; run: CliResult | null }> {
  const pattern = new RegExp(`(?:revert refused[^\\n]*\\n[\\s\\S]*){${n}}`);
  const refused = running.waitFor(pattern, 300_000).then(() => 'refused' as const, () => 'ended' as const);
  const ended = running.done.then(() => 'ended' as const);
  const first = await Promise.race([refused, ended]);
  if (first === 'refused') return { refused: [...running.stderr().matchAll(/revert refused[^\n]*/g)][n - 1]![0], run: null };
  return { refused: null, run: await running.done };
}

async function checkpoint(sc: { conn: mysql.Connection; db: string; migrationId: string }): Promise<{ phase: string; state: Record<string, any> } | null> {
  const [rows] = await sc.conn.query(`SELECT phase, state FROM \`${sc.db}\`._ferry_checkpoints WHERE migration_id = ?`, [sc.migrationId]);
  const cp = (rows as { phase: string; state: string }[])[0];
  return cp ? { phase: cp.phase, state: JSON.parse(cp.state) } : null;
}

/** The names of the triggers now on courseware_studentmodule itself. */
async function triggersOnTable(conn: mysql.Connection, db: string): Promise<string[]> {
  const [r] = await conn.query('SELECT TRIGGER_NAME AS t FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?', [db, CSM]);
  return (r as { t: string }[]).map((x) => x.t).sort();
}

function names(sc: { db: string; migrationId: string }) {
  const t = { database: sc.db, table: CSM };
  const w = windowNames(sc.migrationId, t);
  const r = captureNames(revertId(sc.migrationId), t);
  return { window: [w.insert, w.update, w.delete].sort(), capture: [r.insert, r.update, r.delete].sort(), log: w.log.table };
}

const T = (sc: { db: string }, table = CSM) => `\`${sc.db}\`.\`${table}\``;
const has = (on: string[], these: string[]) => these.every((x) => on.includes(x));
const none = (on: string[], these: string[]) => these.every((x) => !on.includes(x));

/** Runs an SQL statement on the table and on the reference. */
async function both(sc: AlterScenario, sql: (t: string) => string, params: unknown[] = []): Promise<void> {
  await sc.conn.query(sql(T(sc)), params);
  await sc.conn.query(sql(T(sc, 'reference')), params);
}

/** The values of a row of the scenario a test writes itself (id ≡ 2 mod 3). */
async function rowOf(sc: AlterScenario, id: number): Promise<{ module_id: string; student_id: string; course_id: string }> {
  const [r] = await sc.conn.query(`SELECT module_id, student_id, course_id FROM ${T(sc)} WHERE id = ?`, [id]);
  return (r as { module_id: string; student_id: string; course_id: string }[])[0]!;
}

describe('the revert window of an online-alter, attacked', () => {
  /**
   * Promise: none of the application's writes fails because of the window or the revert, and
   * every write is back after it. Six writers that never pause (autocommit, no retry) from before
   * the run to after the revert: they meet the swap, the revert's triggers being made, the window's
   * being dropped, the repairs and the RENAME back.
   */
  it('six writers that never pause meet the swap, the window, the revert\'s trigger changes and the RENAME back: none fails, every write is back', async () => {
    const c = await advCutOver('advnp', writing(6, 6, 0), 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT');
    try {
      const asked = await askRevert(c);
      expect(asked.code, asked.stderr).toBe(0);
      const run = await c.running.done;
      expectReverted(run);
      expect((run.last as { reverted: { fromWindow: boolean } }).reverted.fromWindow).toBe(true);
      await expectEveryWriteAfterRevert(c, 500);
    } finally {
      await endCutOver(c);
    }
  }, 480_000);

  /**
   * Multi-statement transactions that stay open ~0.4 s (UPDATE; SLEEP; UPDATE; INSERT; DELETE;
   * COMMIT), three writers back to back, across the swap and across the revert's start, its
   * trigger changes and its RENAME back: none may fail, every write is back.
   */
  it('transactions held open across the swap and across the revert (UPDATE; SLEEP 0.4; UPDATE; INSERT; DELETE; COMMIT): none fails, every write is back', async () => {
    const maxId = REVERT_ROWS - 2000;
    const txWriter = (sc: { db: string }, k: number, writers: number): AppWriter => {
      const base = studentModuleWrites(sc.db, CSM, maxId);
      const mine = (s: AppStatement) => {
        const id = Number(s.params[s.params.length - 1]);
        const own = id - (id % writers) + k;
        return own > maxId ? own - writers : own < 1 ? own + writers : own;
      };
      const withId = (s: AppStatement, id: number): AppStatement => ({ ...s, params: [...s.params.slice(0, -1), id] });
      return startTransactionWriter((i) => {
        const n = (i * writers + k) * 3;
        const u1 = base(n + 1);
        const u2 = base(n + 4);
        const [x, y] = [mine(u1), mine(u2)].sort((p, q) => p - q);
        return [
          withId(u1, x!),
          { op: 'sleep', sql: 'SELECT SLEEP(0.4)', params: [] },
          withId(u2, y === x ? y! + writers : y!),
          base(n),
          withId(base(n + 2), mine(base(n + 2))),
        ];
      }, { pauseMillis: 2 });
    };
    const c = await advCutOver('advtx', (sc) => [0, 1, 2].map((k) => txWriter(sc, k, 3)), 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT');
    try {
      const asked = await askRevert(c);
      expect(asked.code, asked.stderr).toBe(0);
      const { refused, run } = await revertOutcome(c.running);
      expect(refused).toBeNull();
      expectReverted(run!);
      await new Promise((r) => setTimeout(r, 1000));
      const ops = await stopWriters(c);
      expect(ops.filter((o) => o.op === 'commit' && o.startedAt > c.cutOverAt).length, 'transactions committed after the swap').toBeGreaterThan(5);
      await expectOriginalWithEveryWrite(c, ops);
    } finally {
      await endCutOver(c);
    }
  }, 480_000);

  /**
   * Statements of many rows, and writes that change a row's key, after the swap and again while
   * the revert runs: UPDATE … SET id = id + 100000 over 200 rows, a bulk UPDATE of 667 rows (more
   * than one batch of the log), a DELETE of 200 rows, a multi-row INSERT, REPLACE (in place, and
   * deleting two rows), INSERT … ON DUPLICATE KEY UPDATE that moves a row's id and one that updates
   * through the unique key. The same statements on the reference: the original must equal it.
   */
  it('key-changing updates, REPLACE, ON DUPLICATE KEY UPDATE, multi-row INSERT, UPDATE and DELETE after the swap and during the revert: all of them are in the original', async () => {
    const c = await advCutOver('advst', writing(2, 3, 3), 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT');
    const { sc } = c;
    const cols = '(id, module_id, student_id, state, created, modified, course_id)';
    try {
      // ids ≡ 2 (mod 3), which the writers never touch; each round its own rows
      const two = (x: number) => x - (x % 3) + 2;
      const round = async (r: number) => {
        const o = r * 20_000;
        await both(sc, (t) => `UPDATE ${t} SET id = id + ${100_000 + o} WHERE id BETWEEN ${2000 + 1000 * r} AND ${2600 + 1000 * r} AND id % 3 = 2`);
        await both(sc, (t) => `UPDATE ${t} SET grade = 42.5, state = 'bulk ${r}' WHERE id BETWEEN ${4000 + 2000 * r} AND ${6000 + 2000 * r} AND id % 3 = 2`);
        await both(sc, (t) => `DELETE FROM ${t} WHERE id BETWEEN ${8000 + 700 * r} AND ${8600 + 700 * r} AND id % 3 = 2`);
        const values = Array.from({ length: 50 }, (_, i) => `(${400_002 + o + i * 3}, 'adv-multi-${r}-${i}', ${900_000 + o + i}, 'multi', '2025-02-02', '2025-02-02', 'course-v1:adv')`).join(', ');
        await both(sc, (t) => `INSERT INTO ${t} ${cols} VALUES ${values}`);
        // REPLACE whose new row clashes with two rows (its id with one, its unique key with another), and one in place
        const [a, b] = [two(9400 + 30 * r), two(9500 + 30 * r)];
        const rb = await rowOf(sc, b);
        await both(sc, (t) => `REPLACE INTO ${t} ${cols} VALUES (?, ?, ?, 'replaced', '2025-03-03', '2025-03-03', ?)`, [a, rb.module_id, rb.student_id, rb.course_id]);
        await both(sc, (t) => `REPLACE INTO ${t} ${cols} VALUES (?, 'adv-replaced', ?, 'replaced in place', '2025-03-04', '2025-03-04', 'course-v1:adv')`, [two(9600 + 30 * r), 910_000 + o]);
        // ON DUPLICATE KEY UPDATE: on the primary key, moving the row's id; on the unique key, updating the row
        await both(sc, (t) => `INSERT INTO ${t} ${cols} VALUES (?, 'x', 1, 'x', '2025-04-04', '2025-04-04', 'x') ON DUPLICATE KEY UPDATE id = id + ${300_000 + o}, state = 'odku moved'`, [two(9700 + 30 * r)]);
        const ru = await rowOf(sc, two(9800 + 30 * r));
        await both(sc, (t) => `INSERT INTO ${t} ${cols} VALUES (?, ?, ?, 'y', '2025-05-05', '2025-05-05', ?) ON DUPLICATE KEY UPDATE state = 'odku unique', grade = 7`, [700_000 + o, ru.module_id, ru.student_id, ru.course_id]);
      };
      await round(0);
      await new Promise((r) => setTimeout(r, 300));
      const asked = await askRevert(c);
      expect(asked.code, asked.stderr).toBe(0);
      // while the revert runs (or right before it starts)
      await round(1);
      const { refused, run } = await revertOutcome(c.running);
      expect(refused).toBeNull();
      expectReverted(run!);
      await new Promise((r) => setTimeout(r, 300));
      const ops = await stopWriters(c);
      await expectOriginalWithEveryWrite(c, ops);
    } finally {
      await endCutOver(c);
    }
  }, 480_000);

  /**
   * A refused revert gives the window back (its triggers on the table, the lag in ferry status),
   * the application writes on, the rows are fixed, and a second revert loses nothing.
   */
  it('a revert refused for a value the original cannot hold gives the window back; after writes and the fix, a second revert loses nothing', async () => {
    const c = await advCutOver('advrf', writing(2, 3, 2), 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT, MODIFY student_id bigint NOT NULL');
    const { sc } = c;
    const n = names(sc);
    try {
      await sc.conn.query(`UPDATE ${T(sc)} SET student_id = 5000000017 WHERE id = 17`);
      const [ins] = await sc.conn.query(`INSERT INTO ${T(sc)} (module_id, student_id, state, created, modified, course_id) VALUES ('adv-bad', 6000000000, 'bad', '2025-01-01', '2025-01-01', 'course-v1:adv')`);
      const badId = (ins as { insertId: number }).insertId;
      const asked = await askRevert(c);
      expect(asked.code, asked.stderr).toBe(0);
      const first = await revertOutcome(c.running);
      expect(first.run, first.run?.stderr).toBeNull();
      expect(first.refused).toMatch(/revert refused: _courseware_studentmodule_old cannot hold rows/);
      await c.running.waitFor(/waiting for approval "cleanup"[\s\S]*waiting for approval "cleanup"/, 60_000);
      expect(await triggersOnTable(sc.conn, sc.db), "the window's triggers, and only them, on the table again").toEqual(n.window);
      const status = await runFerry(['status', sc.migrationId, '--state-dir', sc.stateDir]);
      expect(String((JSON.parse(status.stdout) as { holds?: string }).holds)).toMatch(/revert window open on .* is \d+ rows behind/);
      // the application writes on, then the rows are fixed
      await new Promise((r) => setTimeout(r, 1500));
      await sc.conn.query(`UPDATE ${T(sc)} SET student_id = 777017 WHERE id = 17`);
      await sc.conn.query(`UPDATE ${T(sc)} SET student_id = 777018 WHERE id = ?`, [badId]);
      await new Promise((r) => setTimeout(r, 500));
      expect((await askRevert(c)).code).toBe(0);
      const second = await revertOutcome(c.running, 2);
      expect(second.refused).toBeNull();
      expectReverted(second.run!);
      await new Promise((r) => setTimeout(r, 300));
      const ops = await stopWriters(c);
      await expectOriginalWithEveryWrite(c, ops, async () => {
        await sc.conn.query(`UPDATE ${T(sc, 'reference')} SET student_id = 777017 WHERE id = 17`);
        await sc.conn.query(`INSERT INTO ${T(sc, 'reference')} (id, module_id, student_id, state, created, modified, course_id) VALUES (?, 'adv-bad', 777018, 'bad', '2025-01-01', '2025-01-01', 'course-v1:adv')`, [badId]);
      });
    } finally {
      await endCutOver(c);
    }
  }, 480_000);

  /**
   * SIGKILL "at any moment of the revert, then the same ferry local command, finishes it". The
   * moment here: a refused revert has given the window back and taken its own triggers off the
   * table, and has not yet recorded the refusal (phase still `revert`). The checkpoint row is held
   * by another session at that instant (SELECT … FOR UPDATE) so the kill lands there every time.
   * Then the rows are fixed and the same command runs again: every write must be in the original.
   */
  it('a revert killed while its refusal gives the window back (its own triggers gone, the refusal not recorded yet) is finished by the same command, losing no write', async () => {
    const c = await advCutOver('advkr', writing(2, 3, 2), 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT, MODIFY student_id bigint NOT NULL');
    const { sc } = c;
    const n = names(sc);
    const locker = await admin();
    const watcher = await admin();
    let running = c.running;
    try {
      await sc.conn.query(`UPDATE ${T(sc)} SET student_id = 5000000017 WHERE id = 17`);
      const [ins] = await sc.conn.query(`INSERT INTO ${T(sc)} (module_id, student_id, state, created, modified, course_id) VALUES ('adv-bad', 6000000000, 'bad', '2025-01-01', '2025-01-01', 'course-v1:adv')`);
      const badId = (ins as { insertId: number }).insertId;
      const logCount = async () => {
        const [r] = await watcher.query(`SELECT COUNT(*) AS n FROM \`${sc.db}\`.\`${n.log}\``).catch(() => [[{ n: '-1' }]] as never);
        return Number((r as { n: string }[])[0]!.n);
      };
      let killed = false;
      for (let attempt = 1; attempt <= 6 && !killed; attempt++) {
        expect((await askRevert(c)).code).toBe(0);
        let sawCapture = false;
        const deadline = Date.now() + 120_000;
        while (!killed && Date.now() < deadline) {
          const on = await triggersOnTable(watcher, sc.db);
          if (has(on, n.capture)) sawCapture = true;
          const refusedSoFar = [...running.stderr().matchAll(/revert refused/g)].length;
          if (refusedSoFar >= attempt) break; // this refusal went by before it could be caught: ask again
          if (sawCapture && has(on, n.capture) && none(on, n.window) && (await logCount()) === 0) {
            await locker.query('START TRANSACTION');
            await locker.query(`SELECT phase FROM \`${sc.db}\`._ferry_checkpoints WHERE migration_id = ? FOR UPDATE`, [sc.migrationId]);
            // held before the refusal gave the window back: the window's triggers not on the table yet, so its save is still to come
            const still = await triggersOnTable(watcher, sc.db);
            const until = has(still, n.capture) && none(still, n.window) ? Date.now() + 3000 : 0;
            while (Date.now() < until) {
              const now = await triggersOnTable(watcher, sc.db);
              if (has(now, n.window) && none(now, n.capture)) {
                running.child.kill('SIGKILL');
                killed = true;
                // the save it had sent would still run on the server once the row is let go: its session ended, as if the kill came right before it was sent
                await running.done;
                for (let i = 0; i < 200; i++) {
                  const [p] = await watcher.query("SELECT ID AS id FROM information_schema.PROCESSLIST WHERE INFO LIKE 'UPDATE %_ferry_checkpoints%' AND ID <> CONNECTION_ID()");
                  const ids = (p as { id: string }[]).map((x) => x.id);
                  if (ids.length === 0) break;
                  for (const id of ids) await watcher.query(`KILL CONNECTION ${Number(id)}`).catch(() => undefined);
                  await new Promise((r) => setTimeout(r, 20));
                }
                break;
              }
              await new Promise((r) => setTimeout(r, 1));
            }
            await locker.query('ROLLBACK');
          }
          await new Promise((r) => setTimeout(r, 1));
        }
      }
      expect(killed, 'the kill landed between the refusal dropping the revert\'s triggers and recording itself').toBe(true);
      const killedRun = await running.done;
      expect(killedRun.signal).toBe('SIGKILL');
      const cp = await checkpoint(sc);
      expect(cp?.phase, 'the refusal was not recorded').toBe('revert');
      expect(await triggersOnTable(sc.conn, sc.db), 'the window given back, the revert\'s triggers gone').toEqual(n.window);
      // the rows fixed; the application writes on; the same command again
      await sc.conn.query(`UPDATE ${T(sc)} SET student_id = 777017 WHERE id = 17`);
      await sc.conn.query(`UPDATE ${T(sc)} SET student_id = 777018 WHERE id = ?`, [badId]);
      await new Promise((r) => setTimeout(r, 500));
      running = startFerry(c.args);
      // while it runs: is the table ever without any trigger of ferry's while the original is still _t_old?
      const unguarded: string[] = [];
      const watching = (async () => {
        while (running.child.exitCode === null && running.child.signalCode === null) {
          const on = await triggersOnTable(watcher, sc.db);
          const [old] = await watcher.query('SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [sc.db, `_${CSM}_old`]);
          if (on.length === 0 && Number((old as { n: string }[])[0]!.n) === 1) unguarded.push(new Date().toISOString());
          await new Promise((r) => setTimeout(r, 2));
        }
      })();
      let outcome = await revertOutcome(running);
      if (outcome.refused) {
        // refused again (the log still named the fixed rows as refused): ask once more
        expect((await askRevert(c)).code).toBe(0);
        outcome = await revertOutcome(running, 2);
      }
      await watching;
      expect(outcome.refused).toBeNull();
      expectReverted(outcome.run!);
      await new Promise((r) => setTimeout(r, 300));
      const ops = await stopWriters(c);
      const seen = unguarded.length ? `${unguarded.length} looks between ${unguarded[0]} and ${unguarded[unguarded.length - 1]}` : 'none';
      expect.soft(seen, 'looks at the altered table (while _t_old was still the original) that found neither the window\'s triggers nor the revert\'s').toBe('none');
      const ids = ops.filter((o) => o.insertId).map((o) => o.insertId!);
      expect.soft(ids.filter((id, i) => ids.indexOf(id) !== i), 'ids the application was given twice (once by the altered table, again by the original)').toEqual([]);
      await expectOriginalWithEveryWrite(c, ops, async () => {
        await sc.conn.query(`UPDATE ${T(sc, 'reference')} SET student_id = 777017 WHERE id = 17`);
        await sc.conn.query(`INSERT INTO ${T(sc, 'reference')} (id, module_id, student_id, state, created, modified, course_id) VALUES (?, 'adv-bad', 777018, 'bad', '2025-01-01', '2025-01-01', 'course-v1:adv')`, [badId]);
      });
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end().catch(() => undefined);
      await watcher.end().catch(() => undefined);
      running.child.kill('SIGKILL');
      await endCutOver(c);
    }
  }, 600_000);

  /** SIGKILL at random moments of the revert, four times, then the same command: every write back, none failed. */
  it('a revert killed (SIGKILL) at four random moments is finished by the same command, losing no write', async () => {
    const c = await advCutOver('advrk', writing(3, 3, 1), 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT');
    const { sc } = c;
    let running = c.running;
    try {
      expect((await askRevert(c)).code).toBe(0);
      let kills = 0;
      for (let i = 0; i < 4; i++) {
        // once the revert is under way (its first line), a random few hundred milliseconds later
        const began = await Promise.race([running.waitFor(/reverting/, 120_000).then(() => true, () => false), running.done.then(() => false)]);
        if (!began) break;
        await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 250)));
        if (running.child.exitCode !== null) break;
        running.child.kill('SIGKILL');
        const ended = await running.done;
        if (ended.signal !== 'SIGKILL') break;
        kills += 1;
        running = startFerry(c.args);
        // killed before the revert began, the run asks for the cleanup approval again
        const how = await Promise.race([running.waitFor(/reverting|waiting for approval "cleanup"/, 120_000).then(() => (/reverting/.test(running.stderr()) ? 'reverting' : 'asked')), running.done.then(() => 'ended')]);
        if (how === 'asked') expect((await askRevert(c)).code).toBe(0);
        if (how === 'ended') break;
      }
      expect(kills, 'kills').toBeGreaterThanOrEqual(2);
      const last = await running.done;
      expectReverted(last);
      await new Promise((r) => setTimeout(r, 300));
      const ops = await stopWriters(c);
      await expectOriginalWithEveryWrite(c, ops);
    } finally {
      running.child.kill('SIGKILL');
      await endCutOver(c);
    }
  }, 600_000);

  /** The cleanup approved while writers that never pause write: nothing of ferry's is left, no write failed, and the table holds every write. */
  it('the cleanup approved under writers that never pause closes the window: no trigger or _ferry_*_log left, no write failed, every write in the table', async () => {
    const c = await advCutOver('advcl', writing(4, 4, 0), 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT');
    const { sc } = c;
    try {
      const ok = await runFerry(['approve', sc.migrationId, '--step', 'cleanup', '--state-dir', sc.stateDir]);
      expect(ok.code, ok.stderr).toBe(0);
      const run = await c.running.done;
      expect(run.code, run.stderr.slice(-3000)).toBe(0);
      await new Promise((r) => setTimeout(r, 500));
      const ops = await stopWriters(c);
      expect(failures(ops), "the application's writes that failed").toEqual([]);
      expect(await sc.triggers(), 'triggers left').toEqual([]);
      expect((await sc.tables()).filter((t) => t !== CSM && t !== 'reference' && t !== '_ferry_checkpoints'), "ferry's tables left").toEqual([]);
      const { replayStudentModuleWrites } = await import('../helpers/app-writer.ts');
      await replayStudentModuleWrites(sc.conn, sc.db, 'reference', ops);
      const [table, reference] = [await tableContent(sc.conn, sc.db, CSM), await tableContent(sc.conn, sc.db, 'reference')];
      expect({ rows: table.rows, checksum: table.checksum }).toEqual({ rows: reference.rows, checksum: reference.checksum });
    } finally {
      await endCutOver(c);
    }
  }, 480_000);
});

export type { AppOp };
