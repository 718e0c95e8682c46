import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FileFlagStore } from '../../lambdas/adapters/flags.ts';
import { Mysql2Connector } from '../../lambdas/adapters/mysql2.ts';
import type { TaskDeps } from '../../lambdas/core/ports/task-deps.ts';
import { originalBehind } from '../../lambdas/online-alter/revert.ts';
import { runFerry, startFerry } from '../helpers/cli.ts';
import { startAppWriter, studentModuleWriter } from '../helpers/app-writer.ts';
import { CSM } from '../helpers/alter-scenario.ts';
import { MYSQL_URL } from '../helpers/db.ts';
import { askRevert as revert, cutOver, endCutOver, expectEveryWriteAfterRevert, expectOriginalWithEveryWrite, expectReverted, MAX_ID, REVERT_ROWS, stopWriters } from '../helpers/alter-revert.ts';

const writing = (writers: number) => (sc: { db: string }) => Array.from({ length: writers }, (_, k) => startAppWriter(studentModuleWriter(sc.db, CSM, MAX_ID, k, writers), { pauseMillis: 3 }));

/** The migration's checkpoint row: its phase and state. */
async function checkpoint(sc: { conn: import('mysql2/promise').Connection; db: string; migrationId: string }): Promise<{ phase: string; state: Record<string, any> } | null> {
  const [rows] = await sc.conn.query(`SELECT phase, state FROM \`${sc.db}\`._ferry_checkpoints WHERE migration_id = ?`, [sc.migrationId]);
  const cp = (rows as { phase: string; state: string }[])[0];
  return cp ? { phase: cp.phase, state: JSON.parse(cp.state) } : null;
}

describe('the revert window of an online-alter: from the swap until the cleanup', () => {
  it("logs the key of every row the application writes in the altered table, shows the original's lag in ferry status, and a revert compares only those rows, losing none", async () => {
    const c = await cutOver(writing(2), 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT');
    const { sc, running } = c;
    try {
      // while the cleanup approval waits: three triggers of ferry's on the table, and the lag they keep
      expect(await sc.triggers(), "the window's triggers on the altered table").toHaveLength(3);
      const status = await runFerry(['status', sc.migrationId, '--state-dir', sc.stateDir]);
      expect(status.code, status.stderr).toBe(0);
      const holds = String((JSON.parse(status.stdout) as { holds?: string }).holds);
      const behind = /_courseware_studentmodule_old is (\d+) rows behind/.exec(holds);
      expect(behind, holds).not.toBeNull();
      expect(Number(behind![1])).toBeGreaterThan(10);
      const stats = await runFerry(['stats', '--input', c.args[3]!]);
      expect(JSON.parse(stats.stdout).revertWindow).toMatchObject({ open: true, rows: expect.stringMatching(/^[1-9][0-9]*$/) });
      // what the scheduled AlterReverify reports on AWS beside the cleanup approval: the same words
      const sql = new Mysql2Connector({ MYSQL_URL });
      try {
        const deps = { sql, flags: new FileFlagStore(sc.stateDir), knobs: new FileFlagStore(sc.stateDir, 'knobs'), budgetMillis: 10_000, now: Date.now, report: () => undefined } as unknown as TaskDeps;
        const { note } = await originalBehind({ migration: JSON.parse(readFileSync(c.args[3]!, 'utf8')) }, deps);
        expect(note).toMatch(/^revert window open on \S+: .*_courseware_studentmodule_old is \d+ rows behind/);
      } finally {
        await sql.closeAll();
      }

      const taken = await revert(c);
      expect(taken.code, taken.stderr).toBe(0);
      const run = await running.done;
      expectReverted(run);
      const reverted = (run.last as { reverted: { fromWindow: boolean; rowsCompared: string } }).reverted;
      expect(reverted.fromWindow).toBe(true);
      // the rows the application wrote since the swap, not the table's 20,000
      expect(Number(reverted.rowsCompared)).toBeGreaterThan(0);
      expect(Number(reverted.rowsCompared)).toBeLessThan(REVERT_ROWS / 4);
      await expectEveryWriteAfterRevert(c, 500);
    } finally {
      await endCutOver(c);
    }
  }, 420_000);

  it('a revert killed (SIGKILL) right after its own triggers were made, and again mid-log, is finished by the same command, losing no write', async () => {
    const c = await cutOver(writing(2), 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT');
    const { sc } = c;
    let running = c.running;
    try {
      expect((await revert(c)).code).toBe(0);
      let kills = 0;
      // first kill: once the revert's triggers carry writes (the window's may be on still); second: once a batch of the log was compared
      for (const killedAt of [(s: Record<string, any>) => s.revert?.captureSince != null, (s: Record<string, any>) => (s.revert?.rangesVerified ?? 0) >= 1]) {
        let killed = false;
        while (running.child.exitCode === null && !killed) {
          const cp = await checkpoint(sc);
          if (cp?.phase === 'revert' && killedAt(cp.state)) {
            running.child.kill('SIGKILL');
            killed = true;
          } else await new Promise((r) => setTimeout(r, 2));
        }
        const ended = await running.done;
        if (ended.signal !== 'SIGKILL') break;
        kills += 1;
        running = startFerry(c.args);
      }
      expect(kills, 'the revert was killed at least once').toBeGreaterThanOrEqual(1);
      expectReverted(await running.done);
      await expectEveryWriteAfterRevert(c, 500);
    } finally {
      running.child.kill('SIGKILL');
      await endCutOver(c);
    }
  }, 480_000);

  it('with revertWindow false nothing of ferry is on the table after the swap, and a revert compares the whole table', async () => {
    const c = await cutOver(writing(1), 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT', { revertWindow: false });
    const { sc, running } = c;
    try {
      expect(await sc.triggers(), 'no trigger on the altered table').toEqual([]);
      expect(await sc.tables()).not.toContain(expect.stringMatching(/^_ferry_.*_log$/));
      expect((await revert(c)).code).toBe(0);
      const run = await running.done;
      expectReverted(run);
      const reverted = (run.last as { reverted: { fromWindow: boolean; rowsCompared: string } }).reverted;
      expect(reverted.fromWindow).toBe(false);
      expect(Number(reverted.rowsCompared), 'every row of the table').toBeGreaterThan(REVERT_ROWS * 0.9);
      await new Promise((r) => setTimeout(r, 300));
      const ops = await stopWriters(c);
      await expectOriginalWithEveryWrite(c, ops);
    } finally {
      await endCutOver(c);
    }
  }, 420_000);

  it('ferry abandon after the swap closes the window (its triggers, then its log); a revert then compares the whole table, losing no write', async () => {
    const c = await cutOver(writing(1), 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT');
    const { sc } = c;
    let running = c.running;
    try {
      running.child.kill('SIGTERM');
      await running.done;
      const closed = await runFerry(['abandon', sc.migrationId, '--state-dir', sc.stateDir]);
      expect(closed.code, closed.stderr).toBe(1);
      expect(closed.stderr).toMatch(/already swapped[^\n]*revert window's triggers and log were dropped/);
      expect(await sc.triggers()).toEqual([]);
      expect(await sc.tables()).not.toContain(expect.stringMatching(/^_ferry_.*_log$/));
      // the application writes on with no window: a revert must find those rows by comparing every row
      await new Promise((r) => setTimeout(r, 1000));
      running = startFerry(c.args);
      await running.waitFor(/waiting for approval "cleanup"/, 240_000);
      expect((await revert(c)).code).toBe(0);
      const run = await running.done;
      expectReverted(run);
      expect((run.last as { reverted: { fromWindow: boolean } }).reverted.fromWindow).toBe(false);
      const ops = await stopWriters(c);
      await expectOriginalWithEveryWrite(c, ops);
    } finally {
      running.child.kill('SIGKILL');
      await endCutOver(c);
    }
  }, 420_000);
});
