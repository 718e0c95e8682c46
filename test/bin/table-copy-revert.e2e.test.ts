import { describe, expect, it } from 'vitest';
import { runFerry, startFerry } from '../helpers/cli.ts';
import { tableFingerprint } from '../helpers/db.ts';
import { scenario, SRC, TGT } from '../helpers/scenario.ts';

describe('ferry revert of a table-copy waiting for its cleanup approval', () => {
  it('sets the cut-over flags back to their values before the cut-over (a flag not set then removed), deletes nothing from either table, and a run after the revert asks for the cut-over again and finishes', async () => {
    const sc = await scenario({ rows: 3000 });
    try {
      const migrationId = sc.input().migrationId as string;
      const prefix = `/ferry/${migrationId}/flags/`;
      // the cut-over also turns on a flag the copy never set
      const flags = {
        copy: { ENABLE_CSMH_EXTENDED: 'true', ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES: 'true' },
        cutover: { ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES: 'false', CSMH_ONLY: 'true' },
      };
      const input = sc.inputFile({ flags });
      const running = startFerry(['local', 'table-copy', '--input', input, '--state-dir', sc.stateDir, '--approve', 'cutover']);
      await running.waitFor(/waiting for approval "cleanup"/, 120_000);
      expect(sc.flags()).toEqual({ [`${prefix}ENABLE_CSMH_EXTENDED`]: 'true', [`${prefix}ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`]: 'false', [`${prefix}CSMH_ONLY`]: 'true' });

      // the application, reading and writing only the new table since the cut-over
      await sc.conn.query(`INSERT INTO \`${sc.tgt}\`.${TGT} (created, student_module_id, state) VALUES (NOW(6), 7, 'after the cut-over'), (NOW(6), 8, 'after the cut-over')`);
      await sc.conn.query(`UPDATE \`${sc.tgt}\`.${TGT} SET state = 'edited after the cut-over' WHERE id = 5`);
      const [source, target] = [await tableFingerprint(sc.conn, sc.src, SRC), await tableFingerprint(sc.conn, sc.tgt, TGT)];
      expect(source.rows).toBe('3000');

      const noReason = await runFerry(['revert', migrationId, '--state-dir', sc.stateDir]);
      expect(noReason.code, noReason.stderr).toBe(2);
      const taken = await runFerry(['revert', migrationId, '--reason', 'the new table answers slowly', '--state-dir', sc.stateDir]);
      expect(taken.code, taken.stderr).toBe(0);
      const run = await running.done;
      expect(run.code, run.stderr).toBe(0);
      expect(run.last, run.stdout).toMatchObject({ outcome: 'reverted', phase: 'reverted', reverted: { askedBy: expect.stringContaining('the new table answers slowly') } });
      expect(sc.flags(), 'the flags as they were before the cut-over').toEqual({ [`${prefix}ENABLE_CSMH_EXTENDED`]: 'true', [`${prefix}ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`]: 'true' });
      expect(await tableFingerprint(sc.conn, sc.src, SRC), 'nothing deleted from the old table').toEqual(source);
      expect(await tableFingerprint(sc.conn, sc.tgt, TGT), "the new table keeps the application's rows").toEqual(target);

      // nothing is pending any more
      const again = await runFerry(['revert', migrationId, '--reason', 'again', '--state-dir', sc.stateDir]);
      expect(again.code, again.stderr).toBe(1);

      // the same input, later: the cut-over is asked for again, then the cleanup, to the end
      const retry = await runFerry(['local', 'table-copy', '--input', input, '--state-dir', sc.stateDir, '--approve', 'all']);
      expect(retry.code, retry.stderr).toBe(0);
      expect(retry.stderr).toMatch(/reverted before: the cut-over is asked for again/);
      expect(retry.last).toMatchObject({ phase: 'done', outcome: 'done' });
      expect((await tableFingerprint(sc.conn, sc.src, SRC)).rows).toBe('0');
      expect(await tableFingerprint(sc.conn, sc.tgt, TGT)).toEqual(target);
      expect(sc.flags()[`${prefix}ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`]).toBe('false');
    } finally {
      await sc.close();
    }
  }, 240_000);

  it('finishes a revert stopped after it began (phase revert in the checkpoint, the flags still the cut-over\'s) when the same command runs again, without asking for the cleanup approval again', async () => {
    const sc = await scenario({ rows: 1500 });
    try {
      const migrationId = sc.input().migrationId as string;
      const prefix = `/ferry/${migrationId}/flags/`;
      const args = ['local', 'table-copy', '--input', sc.inputFile(), '--state-dir', sc.stateDir, '--approve', 'cutover'];
      const running = startFerry(args);
      await running.waitFor(/waiting for approval "cleanup"/, 120_000);
      running.child.kill('SIGKILL');
      await running.done;
      // what a run killed right after the revert's first step leaves: the checkpoint in phase revert, the flags not yet set back
      const [rows] = await sc.conn.query(`SELECT state FROM \`${sc.tgt}\`._ferry_checkpoints WHERE migration_id = ?`, [migrationId]);
      const state = JSON.parse((rows as { state: string }[])[0]!.state);
      expect(state.flagsBefore).toEqual({ ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES: 'true' });
      state.revert = { askedBy: 'revert instead of the cleanup, asked by ops: slow', at: new Date().toISOString(), flagsSetBack: state.flagsBefore };
      await sc.conn.query(`UPDATE \`${sc.tgt}\`._ferry_checkpoints SET phase = 'revert', state = ? WHERE migration_id = ?`, [JSON.stringify(state), migrationId]);
      expect(sc.flags()[`${prefix}ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`]).toBe('false');

      const second = startFerry(args);
      const asked = second.waitFor(/waiting for approval "cleanup"/, 60_000).then(() => 'asked', () => 'ended');
      expect(await Promise.race([second.done.then(() => 'ended'), asked]), `the second run asked for the cleanup approval again:\n${second.stderr()}`).toBe('ended');
      const run = await second.done;
      expect(run.code, run.stderr).toBe(0);
      expect(run.last).toMatchObject({ outcome: 'reverted', phase: 'reverted' });
      expect(sc.flags()[`${prefix}ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`]).toBe('true');
      expect((await tableFingerprint(sc.conn, sc.src, SRC)).rows).toBe('1500');
    } finally {
      await sc.close();
    }
  }, 240_000);
});
