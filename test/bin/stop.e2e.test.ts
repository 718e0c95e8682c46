import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runFerry, startFerry } from '../helpers/cli.ts';
import { admin, tableFingerprint } from '../helpers/db.ts';
import { alterScenario, checkpointOf, CSM } from '../helpers/alter-scenario.ts';
import { scenario, SRC, TGT } from '../helpers/scenario.ts';

async function copyState(conn: import('mysql2/promise').Connection, db: string): Promise<{ phase: string; rowsCopied: bigint } | null> {
  const [rows] = await conn.query(`SELECT phase, state FROM \`${db}\`._ferry_checkpoints`).catch(() => [[]] as never);
  const row = (rows as { phase: string; state: string }[])[0];
  return row ? { phase: row.phase, rowsCopied: BigInt(JSON.parse(row.state).rowsCopied) } : null;
}

/** Ctrl-C (SIGINT) and SIGTERM stop a local run at once and cleanly; a second Ctrl-C stops it there and then. */
describe('stopping ferry local', () => {
  it('table-copy: Ctrl-C mid-copy ends every task within a chunk, exits 130, and the same command resumes to exact counts', async () => {
    const sc = await scenario({ rows: 200_000, stateBytes: 100 });
    try {
      const before = await tableFingerprint(sc.conn, sc.src, SRC);
      const file = sc.inputFile({ chunk: { targetMillis: 100, minRows: 100, maxRows: 2000 }, cleanup: { mode: 'none' } });
      const first = startFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all']);
      for (;;) {
        const cp = await copyState(sc.conn, sc.tgt);
        if (cp?.phase === 'copy' && cp.rowsCopied > 40_000n) break;
        expect(first.child.exitCode, first.stderr()).toBeNull();
        await new Promise((r) => setTimeout(r, 10));
      }
      const signalled = Date.now();
      first.child.kill('SIGINT');
      const stopped = await first.done;
      expect(Date.now() - signalled, stopped.stderr).toBeLessThan(5000);
      expect(stopped.code, stopped.stderr).toBe(130);
      expect(stopped.last).toMatchObject({ status: 'STOPPED', signal: 'SIGINT' });
      expect(stopped.stderr).toMatch(/stopping at the end of the chunk under way/);
      expect(stopped.stderr).toMatch(/table-copy: stopped \(SIGINT\); every task ended and its sessions are closed/);
      // nothing of it runs on: the checkpoint stays where it was left, and the run lock is gone with the process
      const atStop = await copyState(sc.conn, sc.tgt);
      expect(atStop!.phase).toBe('copy');
      expect(atStop!.rowsCopied).toBeLessThan(200_000n);
      await new Promise((r) => setTimeout(r, 1500));
      expect(await copyState(sc.conn, sc.tgt)).toEqual(atStop);
      expect(existsSync(join(sc.stateDir, `${sc.input().migrationId}.lock`))).toBe(false);
      const second = await runFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all']);
      expect(second.code, second.stderr).toBe(0);
      expect(await tableFingerprint(sc.conn, sc.tgt, TGT)).toEqual(before);
      expect(second.last).toMatchObject({ rowsCopied: '200000', rowsVerified: '200000', rowsDelivered: '200000' });
    } finally {
      await sc.close();
    }
  });

  it('online-alter: Ctrl-C while the copy waits on a row the application holds stops at once and says the triggers stay, naming ferry abandon', async () => {
    const sc = await alterScenario(20_000);
    const app = await admin();
    try {
      const file = sc.inputFile({ chunk: { targetMillis: 50, minRows: 50, maxRows: 500 } });
      const running = startFerry(['local', 'online-alter', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all']);
      for (;;) {
        const cp = await checkpointOf(sc);
        if (cp?.phase === 'copy') break;
        expect(running.child.exitCode, running.stderr()).toBeNull();
        await new Promise((r) => setTimeout(r, 5));
      }
      // the application holds the last row (the copy goes in id order): the copy gives way to it again and again
      await app.query('START TRANSACTION');
      await app.query(`SELECT * FROM \`${sc.db}\`.${CSM} ORDER BY id DESC LIMIT 1 FOR UPDATE`);
      for (;;) {
        const cp = await checkpointOf(sc);
        if (cp!.rowsCopied > 15_000n) break;
        expect(running.child.exitCode, running.stderr()).toBeNull();
        await new Promise((r) => setTimeout(r, 10));
      }
      await new Promise((r) => setTimeout(r, 1500));
      expect((await checkpointOf(sc))!.phase).toBe('copy');
      const signalled = Date.now();
      running.child.kill('SIGTERM');
      const stopped = await running.done;
      expect(Date.now() - signalled, stopped.stderr).toBeLessThan(5000);
      expect(stopped.code, stopped.stderr).toBe(143);
      expect(stopped.stderr).toMatch(new RegExp(`ferry's triggers stay on ${sc.db}\\.${CSM} \\(since \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\): every insert, update and delete of the application there also writes _${CSM}_new\\. ` +
        `Run the same command again to resume, or take them back with: npx ferry abandon ${sc.migrationId} --state-dir ${sc.stateDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      expect((await sc.triggers()).length).toBe(3);
      // ferry status says the same: no run is going, and the triggers it holds on the live table
      const status = await runFerry(['status', sc.migrationId, '--state-dir', sc.stateDir]);
      expect(status.code, status.stderr).toBe(0);
      expect(JSON.parse(status.stdout)).toMatchObject({
        migrationId: sc.migrationId,
        phase: 'copy',
        run: 'no run is going: run the same command to resume',
        holds: expect.stringMatching(new RegExp(`^triggers on ${sc.db}\\.${CSM} since \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d: every insert, update and delete there also writes _${CSM}_new`)),
      });
      await app.query('ROLLBACK');
      const abandoned = await runFerry(['abandon', sc.migrationId, '--state-dir', sc.stateDir]);
      expect(abandoned.code, abandoned.stderr).toBe(0);
      expect(await sc.triggers()).toEqual([]);
      expect(await sc.tables()).toEqual(['_ferry_checkpoints', CSM, 'reference']);
    } finally {
      await app.end();
      await sc.close();
    }
  });

  it('a second Ctrl-C ends the run there and then', async () => {
    const sc = await scenario({ rows: 100_000, stateBytes: 100 });
    const app = await admin();
    try {
      const running = startFerry(['local', 'table-copy', '--input', sc.inputFile({ chunk: { targetMillis: 200, minRows: 100, maxRows: 5000 } }), '--state-dir', sc.stateDir, '--approve', 'all']);
      await running.waitFor(/\[copy\]/);
      // the application holds the target table: the chunk under way waits for it, and the first Ctrl-C's stop at its end with it
      await app.query(`LOCK TABLES \`${sc.tgt}\`.${TGT} WRITE`);
      for (;;) {
        const [rows] = await sc.conn.query(`SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE STATE = 'Waiting for table metadata lock' AND INFO LIKE ?`, [`%${sc.tgt}%`]);
        if (Number((rows as { n: unknown }[])[0]!.n) > 0) break;
        expect(running.child.exitCode, running.stderr()).toBeNull();
        await new Promise((r) => setTimeout(r, 10));
      }
      running.child.kill('SIGINT');
      // Ctrl-C again once the first was heard: two signals sent before the process takes the first are one to the kernel (they do not queue)
      await running.waitFor(/stopping at the end of the chunk under way/);
      const signalled = Date.now();
      running.child.kill('SIGINT');
      const stopped = await running.done;
      expect(Date.now() - signalled).toBeLessThan(1000);
      expect(stopped.code, stopped.stderr).toBe(130);
      expect(stopped.stderr).toMatch(/stopped at once: the checkpoint is kept/);
      await app.query('UNLOCK TABLES');
      // and the next run takes the lock of the process that is gone, and finishes
      const again = await runFerry(['local', 'table-copy', '--input', sc.inputFile({ chunk: { targetMillis: 200, minRows: 100, maxRows: 5000 } }), '--state-dir', sc.stateDir, '--approve', 'all']);
      expect(again.code, again.stderr).toBe(0);
    } finally {
      await app.end();
      await sc.close();
    }
  });

  it('online-alter: a refused re-run writes nothing, not even the saved input, and abandon takes back exactly what the migration left', async () => {
    const sc = await alterScenario(600);
    try {
      const file = sc.inputFile();
      const first = startFerry(['local', 'online-alter', '--input', file, '--state-dir', sc.stateDir]);
      await first.waitFor(/waiting for approval "cutover"/);
      first.child.kill('SIGKILL');
      await first.done;
      const saved = join(sc.stateDir, 'inputs', `${sc.migrationId}.json`);
      const kept = readFileSync(saved, 'utf8');
      // the same migration id with a typo in the table's name: refused, and the saved input is the accepted one
      const typo = sc.inputFile({ table: { connection: 'edxapp', database: sc.db, table: 'courseware_studentmodul' } });
      const refused = await runFerry(['local', 'online-alter', '--input', typo, '--state-dir', sc.stateDir]);
      expect(refused.code, refused.stderr).toBe(2);
      expect(readFileSync(saved, 'utf8')).toBe(kept);
      expect((await sc.triggers()).length).toBe(3);
      const abandoned = await runFerry(['abandon', sc.migrationId, '--state-dir', sc.stateDir]);
      expect(abandoned.code, abandoned.stderr).toBe(0);
      expect(abandoned.stderr).toMatch(new RegExp(`abandon: dropped trigger _ferry_[0-9a-f]{12}_ins, trigger _ferry_[0-9a-f]{12}_upd, trigger _ferry_[0-9a-f]{12}_del, _${CSM}_new, _ferry_[0-9a-f]{12}_log; ${CSM} is as it was`));
      expect(await sc.triggers()).toEqual([]);
      expect(await sc.tables()).toEqual(['_ferry_checkpoints', CSM, 'reference']);
      // a second abandon finds nothing, and says so
      const again = await runFerry(['abandon', sc.migrationId, '--state-dir', sc.stateDir]);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toMatch(/nothing of .* was on .*courseware_studentmodule \(no trigger, shadow or capture log of it\)/);
    } finally {
      await sc.close();
    }
  });

  it('a second ferry local of a running migration from another state dir is refused (exit 2), naming the first run and its state dir', async () => {
    const sc = await scenario({ rows: 2000 });
    try {
      const file = sc.inputFile({ cleanup: { mode: 'none' } });
      const first = startFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir]);
      await first.waitFor(/waiting for approval "cutover"/);
      const other = join(sc.dir, 'elsewhere');
      const second = await runFerry(['local', 'table-copy', '--input', file, '--state-dir', other, '--approve', 'all']);
      expect(second.code, second.stderr).toBe(2);
      expect(second.last).toMatchObject({ error: 'MigrationBusy', cause: expect.stringContaining(`(ferry local, pid ${first.child.pid} on `) });
      expect(second.last!.cause).toContain(`state dir ${sc.stateDir}) is running migration`);
      // the first is untouched: it still owns the migration and goes on when approved
      expect((await runFerry(['approve', sc.input().migrationId as string, '--step', 'cutover', '--state-dir', sc.stateDir])).code).toBe(0);
      await first.waitFor(/waiting for approval "cleanup"/);
      first.child.kill('SIGINT');
      expect((await first.done).code).toBe(130);
      // once it is gone, a run from the other state dir takes the migration over
      const third = await runFerry(['local', 'table-copy', '--input', file, '--state-dir', other, '--approve', 'all']);
      expect(third.code, third.stderr).toBe(0);
    } finally {
      await sc.close();
    }
  });
});
