import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startFerry, tempDir, writeJson, type CliResult, type Running } from '../helpers/cli.ts';
import { failures, startAppWriter, startTransactionWriter, studentModuleWrites, studentModuleWriter, type AppStatement, type AppWriter } from '../helpers/app-writer.ts';
import { CSM, tableContent, tableSchema, type AlterScenario } from '../helpers/alter-scenario.ts';
import { askRevert, cutOver, endCutOver, expectEveryWriteAfterRevert, expectOriginalWithEveryWrite, MAX_ID, REVERT_ROWS as ROWS, stopWriters } from '../helpers/alter-revert.ts';
import { admin, makeDatabases } from '../helpers/db.ts';
import { captureNames, revertId } from '../../lambdas/core/tables/shadow.ts';

/**
 * An adversarial reader's attempts at `ferry revert` of an online-alter (README, "A way back for
 * online-alter"), modelled on online-alter-revert.e2e.test.ts.
 */

/**
 * Either the run ends (reverted, or failed), or it says the revert was refused (for the `n`-th
 * time, counting from 1) and waits for the cleanup approval again.
 */
async function revertOutcome(running: Running, n = 1): Promise<{ refused: string | null; run: CliResult | null }> {
  const pattern = new RegExp(`(?:revert refused[^\\n]*\\n[\\s\\S]*){${n}}`);
  const refused = running.waitFor(pattern, 300_000).then(() => 'refused' as const, () => 'ended' as const);
  const ended = running.done.then(() => 'ended' as const);
  const first = await Promise.race([refused, ended]);
  if (first === 'refused') return { refused: [...running.stderr().matchAll(/revert refused[^\n]*/g)][n - 1]![0], run: null };
  return { refused: null, run: await running.done };
}

const T = (sc: AlterScenario, table = CSM) => `\`${sc.db}\`.\`${table}\``;

describe('ferry revert of an online-alter, attacked', () => {
  /**
   * Promise: every row the application wrote after the swap is in the original after the revert;
   * only a row the original cannot hold refuses it. Here the ALTER drops the unique key
   * student_module, and after the swap the application swaps the (student_id, module_id,
   * course_id) of two rows that are more than 1,000 ids apart. The end state satisfies the
   * original's unique key (a plain ALTER back would succeed), so the revert must go through.
   */
  it('reverts after the application swapped the values of a unique key the ALTER dropped between two rows in different ranges', async () => {
    const c = await cutOver((sc) => [startAppWriter(studentModuleWriter(sc.db, CSM, MAX_ID, 0, 1), { pauseMillis: 3 })], 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT, DROP KEY student_module');
    const { sc, running } = c;
    try {
      const triple = async (id: number) => {
        const [r] = await sc.conn.query(`SELECT student_id, module_id, course_id FROM ${T(sc)} WHERE id = ?`, [id]);
        return (r as { student_id: string; module_id: string; course_id: string }[])[0]!;
      };
      const [a, b] = [await triple(5), await triple(15000)];
      // in the altered table there is no unique key on them any more: two plain updates
      await sc.conn.query(`UPDATE ${T(sc)} SET student_id = ?, module_id = ?, course_id = ? WHERE id = 5`, [b.student_id, b.module_id, b.course_id]);
      await sc.conn.query(`UPDATE ${T(sc)} SET student_id = ?, module_id = ?, course_id = ? WHERE id = 15000`, [a.student_id, a.module_id, a.course_id]);
      const [dups] = await sc.conn.query(`SELECT COUNT(*) AS n FROM (SELECT 1 FROM ${T(sc)} GROUP BY student_id, module_id, course_id HAVING COUNT(*) > 1) d`);
      expect(Number((dups as { n: string }[])[0]!.n), 'no duplicate on the original unique key: the original can hold every row').toBe(0);

      const asked = await askRevert(c);
      expect(asked.code, asked.stderr).toBe(0);
      const { refused, run } = await revertOutcome(running);
      expect(refused, 'the revert was refused although the original can hold every row').toBeNull();
      expect(run!.code, run!.stderr).toBe(0);
      expect(run!.last, run!.stdout).toMatchObject({ outcome: 'reverted', phase: 'reverted' });
      await new Promise((r) => setTimeout(r, 500));
      await expectOriginalWithEveryWrite(c, await stopWriters(c), async () => {
        await sc.conn.query(`UPDATE ${T(sc, 'reference')} SET student_id = -5 WHERE id = 5`);
        await sc.conn.query(`UPDATE ${T(sc, 'reference')} SET student_id = ?, module_id = ?, course_id = ? WHERE id = 15000`, [a.student_id, a.module_id, a.course_id]);
        await sc.conn.query(`UPDATE ${T(sc, 'reference')} SET student_id = ?, module_id = ?, course_id = ? WHERE id = 5`, [b.student_id, b.module_id, b.course_id]);
      });
    } finally {
      await endCutOver(c);
    }
  }, 480_000);

  /**
   * The same, with an ALTER that keeps the unique key: the application moves a (student_id,
   * module_id, course_id) from row 15000 to row 5 (row 15000 takes another value first), which the
   * original holds as well as the altered table does. Asked twice: the refusal is not transient.
   */
  it('reverts after the application moved a unique value from a high id to a low id (the ALTER keeps the unique key)', async () => {
    const c = await cutOver((sc) => [startAppWriter(studentModuleWriter(sc.db, CSM, MAX_ID, 0, 1), { pauseMillis: 3 })], 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT');
    const { sc, running } = c;
    try {
      const [r] = await sc.conn.query(`SELECT student_id, module_id, course_id FROM ${T(sc)} WHERE id = 15000`);
      const b = (r as { student_id: string; module_id: string; course_id: string }[])[0]!;
      const moves = async (table: string) => {
        await sc.conn.query(`UPDATE ${T(sc, table)} SET module_id = 'moved away' WHERE id = 15000`);
        await sc.conn.query(`UPDATE ${T(sc, table)} SET student_id = ?, module_id = ?, course_id = ? WHERE id = 5`, [b.student_id, b.module_id, b.course_id]);
      };
      await moves(CSM);

      const refusals: string[] = [];
      let run: CliResult | null = null;
      for (let attempt = 1; attempt <= 2 && !run; attempt++) {
        const asked = await askRevert(c);
        expect(asked.code, asked.stderr).toBe(0);
        const outcome = await revertOutcome(running, attempt);
        if (outcome.refused) refusals.push(outcome.refused);
        run = outcome.run;
      }
      expect(refusals, 'the revert was refused although the original can hold every row').toEqual([]);
      expect(run!.code, run!.stderr).toBe(0);
      expect(run!.last, run!.stdout).toMatchObject({ outcome: 'reverted', phase: 'reverted' });
      await new Promise((r) => setTimeout(r, 500));
      await expectOriginalWithEveryWrite(c, await stopWriters(c), () => moves('reference'));
    } finally {
      await endCutOver(c);
    }
  }, 480_000);

  /**
   * Promise: "A SIGKILL once the revert has begun (its first line, phase revert): the same command
   * finishes it". Killed after the revert's capture triggers are on the table and before the
   * checkpoint records it (captureSince). `LOCK TABLES _t_old WRITE` from another session holds
   * the revert right after its triggers are made (its next statement reads _t_old), so the kill
   * lands in that window every time. Without a revert window: with one, the revert records its
   * triggers before it first reads _t_old.
   */
  it('finishes a revert killed after its capture triggers were made and before the checkpoint recorded them, when the same command runs again', async () => {
    // without a revert window the revert reads _t_old right after its triggers are made, before it records them
    const c = await cutOver(() => [], 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT', { revertWindow: false });
    const { sc, running } = c;
    const locker = await admin();
    try {
      await locker.query(`LOCK TABLES ${T(sc, `_${CSM}_old`)} WRITE`);
      const asked = await askRevert(c);
      expect(asked.code, asked.stderr).toBe(0);
      await running.waitFor(/reverting: bringing/, 120_000);
      // the revert's capture triggers, by name, and nothing else of ferry's
      const names = captureNames(revertId(sc.migrationId), { database: sc.db, table: CSM });
      const theirs = [names.insert, names.update, names.delete].sort();
      let triggers: string[] = [];
      for (let i = 0; i < 3000 && !theirs.every((n) => triggers.includes(n)); i++) {
        triggers = (await sc.triggers()).sort();
        if (!theirs.every((n) => triggers.includes(n))) await new Promise((r) => setTimeout(r, 5));
      }
      expect(triggers, "the revert's capture triggers are on the table").toEqual(theirs);
      const [rows] = await sc.conn.query(`SELECT phase, state FROM \`${sc.db}\`._ferry_checkpoints WHERE migration_id = ?`, [sc.migrationId]);
      const cp = (rows as { phase: string; state: string }[])[0]!;
      expect(cp.phase).toBe('revert');
      expect(JSON.parse(cp.state).revert.captureSince, 'the checkpoint does not record the capture yet').toBeNull();
      running.child.kill('SIGKILL');
      const first = await running.done;
      expect(first.signal).toBe('SIGKILL');
      await locker.query('UNLOCK TABLES');

      const second = startFerry(c.args);
      const asked2 = second.waitFor(/waiting for approval "cleanup"/, 240_000).then(() => 'asked', () => 'ended');
      const how = await Promise.race([second.done.then(() => 'ended'), asked2]);
      second.child.kill('SIGKILL');
      const run = await second.done;
      expect(how, `the second run asked for the cleanup approval again:\n${run.stderr}`).toBe('ended');
      expect(run.code, run.stderr.slice(-3000)).toBe(0);
      expect(run.last, run.stdout).toMatchObject({ outcome: 'reverted', phase: 'reverted' });
      await expectOriginalWithEveryWrite(c, []);
    } finally {
      await locker.query('UNLOCK TABLES').catch(() => undefined);
      await locker.end().catch(() => undefined);
      running.child.kill('SIGKILL');
      await sc.close();
    }
  }, 480_000);

  /**
   * gh-ost's shared-uk (`DROP PRIMARY KEY, ADD PRIMARY KEY (id, i)`) is copied by (id, i); the
   * original has no unique key on exactly (id, i), only PRIMARY KEY (id), so the revert cannot tell
   * a row of the original from another with the same id. It is refused, as the README says, before
   * anything is made: the table stays the altered one and the cleanup approval is asked for again,
   * rather than the migration failing.
   */
  it('refuses the revert of a shared-uk ALTER (PRIMARY KEY (id) to (id, i)) before anything is made, and asks for the cleanup approval again', async () => {
    const conn = await admin();
    const dbs = await makeDatabases(conn, 'rvuk');
    const db = dbs.names.rvuk!;
    const dir = tempDir();
    const stateDir = join(dir, 'state');
    const migrationId = `rvuk-${db.slice(-6)}`;
    const t = `\`${db}\`.shared_uk`;
    let running: Running | null = null;
    try {
      await conn.query(`CREATE TABLE ${t} (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, i int NOT NULL, payload varchar(100) NULL, score int NOT NULL DEFAULT 0)`);
      await conn.query('SET SESSION max_recursive_iterations = 5000');
      await conn.query(`INSERT INTO ${t} (id, i, payload, score) WITH RECURSIVE s(seq) AS (SELECT 1 UNION ALL SELECT seq + 1 FROM s WHERE seq < 3000) SELECT seq * 2, seq % 50, CONCAT('p', seq), seq FROM s`);
      const schemaBefore = await tableSchema(conn, db, 'shared_uk');
      const input = writeJson(dir, 'in.json', {
        migrationId,
        table: { connection: 'edxapp', database: db, table: 'shared_uk' },
        alter: 'DROP PRIMARY KEY, ADD PRIMARY KEY (id, i)',
        chunk: { targetMillis: 20, minRows: 50, maxRows: 300 },
        throttle: { maxThreadsRunning: 200, waitSeconds: 1 },
        cutover: { lockWaitSeconds: 1, attempts: 20 },
        cleanup: { mode: 'drop' },
      });
      running = startFerry(['local', 'online-alter', '--input', input, '--state-dir', stateDir, '--approve', 'cutover']);
      await running.waitFor(/waiting for approval "cleanup"/, 240_000);
      // the application writes the altered table after the swap
      await conn.query(`INSERT INTO ${t} (id, i, payload, score) VALUES (7, 7, 'after the swap', 7)`);
      await conn.query(`UPDATE ${t} SET payload = 'changed after the swap' WHERE id = 10`);
      const asked = await startFerry(['revert', migrationId, '--reason', 'adversarial reader', '--state-dir', stateDir]).done;
      expect(asked.code, asked.stderr).toBe(0);
      const { refused, run } = await revertOutcome(running);
      expect(run, 'the run ended instead of asking for the cleanup approval again').toBeNull();
      expect(refused).toMatch(/revert refused: _shared_uk_old has no unique key on \(id, i\) alone/);
      await running.waitFor(/waiting for approval "cleanup"[\s\S]*waiting for approval "cleanup"/, 60_000);
      expect(await tableSchema(conn, db, 'shared_uk'), 'still the altered table').not.toBe(schemaBefore);
      const [trg] = await conn.query('SELECT COUNT(*) AS n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?', [db]);
      expect(Number((trg as { n: string }[])[0]!.n), 'no trigger left on the table').toBe(0);
      const [r] = await conn.query(`SELECT payload FROM ${t} WHERE id IN (7, 10) ORDER BY id`);
      expect((r as { payload: string }[]).map((x) => x.payload)).toEqual(['after the swap', 'changed after the swap']);
    } finally {
      running?.child.kill('SIGKILL');
      await dbs.drop();
      await conn.end();
    }
  }, 480_000);

  /**
   * Promise: none of the application's writes fails because of the revert. The application here
   * writes in transactions of several statements (two updates in key order, an insert, a delete;
   * no retry), two writers on rows of their own, from before the run to after the revert.
   */
  it("fails none of the application's multi-statement transactions, and carries every write back", async () => {
    // below the scenario's highest ids: the writers' updates and deletes never take the gap where both insert
    const maxId = ROWS - 2000;
    const txWriter = (sc: AlterScenario, k: number, writers: number): AppWriter => {
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
        return [withId(u1, x!), withId(u2, y === x ? y! + writers : y!), base(n), withId(base(n + 2), mine(base(n + 2)))];
      }, { pauseMillis: 3 });
    };
    const c = await cutOver((sc) => [txWriter(sc, 0, 2), txWriter(sc, 1, 2)], 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT');
    const { sc, running } = c;
    try {
      const asked = await askRevert(c);
      expect(asked.code, asked.stderr).toBe(0);
      const { refused, run } = await revertOutcome(running);
      expect(refused).toBeNull();
      expect(run!.code, run!.stderr).toBe(0);
      expect(run!.last, run!.stdout).toMatchObject({ outcome: 'reverted', phase: 'reverted' });
      await expectEveryWriteAfterRevert(c, 1000);
    } finally {
      await endCutOver(c);
    }
  }, 480_000);

  /**
   * Promises 1 and 2 with a CHAR(36) UUID key (ranges by rows in key order, not by ids) and an
   * ALTER that renames a column (`CHANGE note remark`): one writer inserting, updating and
   * deleting single rows with autocommit and no retry from before the run to after the revert,
   * and rows' renamed column written after the swap; the table compared with a reference.
   */
  it('reverts a UUID-keyed table whose ALTER renamed a column, with every write back and none failed', async () => {
    const conn = await admin();
    const dbs = await makeDatabases(conn, 'rvuuid');
    const db = dbs.names.rvuuid!;
    const dir = tempDir();
    const stateDir = join(dir, 'state');
    const migrationId = `rvuuid-${db.slice(-6)}`;
    const t = `\`${db}\`.by_uuid`;
    const ref = `\`${db}\`.reference`;
    let running: Running | null = null;
    let writer: AppWriter | null = null;
    try {
      await conn.query(`CREATE TABLE ${t} (uuid char(36) NOT NULL PRIMARY KEY, payload varchar(100) NULL, score int NOT NULL DEFAULT 0, note varchar(20) NULL) DEFAULT CHARSET=utf8mb4`);
      await conn.query('SET SESSION max_recursive_iterations = 10000');
      await conn.query(`INSERT INTO ${t} (uuid, payload, score, note) WITH RECURSIVE s(seq) AS (SELECT 1 UNION ALL SELECT seq + 1 FROM s WHERE seq < 6000) SELECT IF(seq % 5 = 0, UPPER(UUID()), UUID()), CONCAT('p', seq), seq, IF(seq % 3 = 0, NULL, CONCAT('n', seq)) FROM s`);
      await conn.query(`CREATE TABLE ${ref} LIKE ${t}`);
      await conn.query(`INSERT INTO ${ref} SELECT * FROM ${t}`);
      const schemaBefore = await tableSchema(conn, db, 'by_uuid');
      const [k] = await conn.query(`SELECT uuid FROM ${t}`);
      const keys = (k as { uuid: string }[]).map((x) => x.uuid);
      writer = startAppWriter((i) => {
        const pick = keys[Math.floor(Math.random() * keys.length)]!;
        switch (i % 3) {
          case 0: {
            const u = i % 4 === 0 ? randomUUID().toUpperCase() : randomUUID();
            keys.push(u);
            return { op: 'insert', sql: `INSERT INTO ${t} (uuid, payload, score) VALUES (?, ?, ?)`, params: [u, `new ${i}`, i] };
          }
          case 1:
            return { op: 'update', sql: `UPDATE ${t} SET payload = ?, score = ? WHERE uuid = ?`, params: [`updated ${i}`, i, pick] };
          default:
            return { op: 'delete', sql: `DELETE FROM ${t} WHERE uuid = ?`, params: [pick] };
        }
      }, { pauseMillis: 3 });
      const input = writeJson(dir, 'in.json', {
        migrationId,
        table: { connection: 'edxapp', database: db, table: 'by_uuid' },
        alter: 'CHANGE note remark varchar(20) NULL',
        chunk: { targetMillis: 20, minRows: 50, maxRows: 300 },
        throttle: { maxThreadsRunning: 200, waitSeconds: 1 },
        cutover: { lockWaitSeconds: 1, attempts: 20 },
        cleanup: { mode: 'drop' },
      });
      running = startFerry(['local', 'online-alter', '--input', input, '--state-dir', stateDir, '--approve', 'cutover']);
      await running.waitFor(/waiting for approval "cleanup"/, 240_000);
      // the renamed column, written under its new name after the swap (rows the writer never deletes: the lowest keys, which it may update)
      const [low] = await conn.query(`SELECT uuid FROM ${t} ORDER BY uuid LIMIT 3`);
      const renamed = (low as { uuid: string }[]).map((x) => x.uuid);
      for (const u of renamed) await conn.query(`UPDATE ${t} SET remark = 'after swap' WHERE uuid = ?`, [u]);
      await new Promise((r) => setTimeout(r, 1000));
      const asked = await startFerry(['revert', migrationId, '--reason', 'adversarial reader', '--state-dir', stateDir]).done;
      expect(asked.code, asked.stderr).toBe(0);
      const { refused, run } = await revertOutcome(running);
      expect(refused).toBeNull();
      expect(run!.code, run!.stderr).toBe(0);
      expect(run!.last, run!.stdout).toMatchObject({ outcome: 'reverted', phase: 'reverted' });
      await new Promise((r) => setTimeout(r, 500));
      const ops = await writer.stop();
      expect(failures(ops), "the application's writes that failed").toEqual([]);
      expect(await tableSchema(conn, db, 'by_uuid')).toBe(schemaBefore);
      for (const o of ops) {
        if (o.error) continue;
        if (o.op === 'insert') await conn.query(`INSERT INTO ${ref} (uuid, payload, score) VALUES (?, ?, ?)`, o.params as unknown[]);
        else if (o.op === 'update') await conn.query(`UPDATE ${ref} SET payload = ?, score = ? WHERE uuid = ?`, o.params as unknown[]);
        else await conn.query(`DELETE FROM ${ref} WHERE uuid = ?`, o.params as unknown[]);
      }
      for (const u of renamed) await conn.query(`UPDATE ${ref} SET note = 'after swap' WHERE uuid = ?`, [u]);
      const [table, reference] = [await tableContent(conn, db, 'by_uuid'), await tableContent(conn, db, 'reference')];
      expect({ rows: table.rows, checksum: table.checksum }).toEqual({ rows: reference.rows, checksum: reference.checksum });
    } finally {
      running?.child.kill('SIGKILL');
      await writer?.stop();
      await dbs.drop();
      await conn.end();
    }
  }, 480_000);

  /**
   * Promise 4 around the swap back: killed (SIGKILL) the moment `_t_old` is seen gone (the RENAME
   * back done), before or after the checkpoint records swappedBackAt; the same command finishes it,
   * with every write back.
   */
  it('finishes a revert killed right after its RENAME back, when the same command runs again', async () => {
    const c = await cutOver((sc) => [startAppWriter(studentModuleWriter(sc.db, CSM, MAX_ID, 0, 1), { pauseMillis: 3 })], 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT');
    const { sc, running } = c;
    try {
      const asked = await askRevert(c);
      expect(asked.code, asked.stderr).toBe(0);
      const old = `_${CSM}_old`;
      for (;;) {
        const [r] = await sc.conn.query('SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [sc.db, old]);
        if (Number((r as { n: string }[])[0]!.n) === 0) {
          running.child.kill('SIGKILL');
          break;
        }
        if (running.child.exitCode !== null) break;
      }
      const first = await running.done;
      expect(first.signal, `the run ended before it was killed:\n${first.stderr}`).toBe('SIGKILL');
      const run = await startFerry(c.args).done;
      expect(run.code, run.stderr.slice(-3000)).toBe(0);
      expect(run.last, run.stdout).toMatchObject({ outcome: 'reverted', phase: 'reverted' });
      await new Promise((r) => setTimeout(r, 500));
      await expectOriginalWithEveryWrite(c, await stopWriters(c));
    } finally {
      await endCutOver(c);
    }
  }, 480_000);
});
