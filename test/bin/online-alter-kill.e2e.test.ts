import { describe, expect, it } from 'vitest';
import { runFerry, startFerry } from '../helpers/cli.ts';
import { alterScenario, csmFingerprint, CSM } from '../helpers/alter-scenario.ts';
import { phaseGate } from '../helpers/db.ts';

/** A SIGKILL in online-alter's verification and cleanup, with the application writing throughout. */
describe.each(['verify', 'cleanup'])('ferry local online-alter killed during %s', (phase) => {
  it('resumes and ends with the altered table holding exactly the reference content', async () => {
    const sc = await alterScenario(15000);
    try {
      const writer = sc.startWriter();
      const settings = { chunk: { targetMillis: 10, minRows: 50, maxRows: 100 }, cleanup: { mode: 'trickle-delete', batchRows: 200 } };
      const file = sc.inputFile(settings);
      // Verify is short (most ranges were verified behind the copy): the first run is held there until it is killed.
      const held = phase === 'verify' ? sc.inputFile({ ...settings, throttle: { maxThreadsRunning: 200, waitSeconds: 1, query: await phaseGate(sc.db, 'verify') } }) : file;
      const first = startFerry(['local', 'online-alter', '--input', held, '--state-dir', sc.stateDir, '--approve', 'all']);
      for (;;) {
        const [rows] = await sc.conn.query(`SELECT phase, state FROM \`${sc.db}\`._ferry_checkpoints`).catch(() => [[]] as never);
        const row = (rows as { phase: string; state: string }[])[0];
        const state = row ? JSON.parse(row.state) : null;
        const under = phase === 'verify' ? state?.rangesVerified > 3 : BigInt(state?.rowsDeleted ?? 0) > 1000n;
        if (row?.phase === phase && under) break;
        expect(first.child.exitCode, first.stderr()).toBeNull();
        await new Promise((r) => setTimeout(r, 5));
      }
      first.child.kill('SIGKILL');
      await first.done;
      const second = await runFerry(['local', 'online-alter', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all']);
      await writer.stop();
      expect(second.code, second.stderr).toBe(0);
      expect(await sc.columnType()).toBe('bigint(20) unsigned');
      expect(await csmFingerprint(sc.conn, sc.db, CSM)).toEqual(await csmFingerprint(sc.conn, sc.db, 'reference'));
      expect(await sc.tables()).toEqual(['_ferry_checkpoints', CSM, 'reference']);
    } finally {
      await sc.close();
    }
  });
});

/** A SIGKILL in the middle of a copy by a composite key, its checkpoint a key of two columns, with the application writing throughout. */
describe('ferry local online-alter by a composite key killed during the copy', () => {
  it('resumes after the last key copied and ends with the altered table holding exactly the reference content', async () => {
    const sc = await alterScenario(15000);
    try {
      const writer = sc.startWriter();
      // the new primary key (id, student_id) names a row by both columns: ferry copies by them, in chunks of rows
      const file = sc.inputFile({ alter: 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT, DROP PRIMARY KEY, ADD PRIMARY KEY (id, student_id)', chunk: { targetMillis: 10, minRows: 50, maxRows: 100 }, cleanup: { mode: 'drop' } });
      const first = startFerry(['local', 'online-alter', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all']);
      let copiedUpTo: string | null = null;
      for (;;) {
        const [rows] = await sc.conn.query(`SELECT phase, state FROM \`${sc.db}\`._ferry_checkpoints`).catch(() => [[]] as never);
        const row = (rows as { phase: string; state: string }[])[0];
        const state = row ? JSON.parse(row.state) : null;
        if (row?.phase === 'copy' && BigInt(state?.rowsCopied ?? 0) > 3000n) {
          copiedUpTo = state.copiedUpTo;
          break;
        }
        expect(first.child.exitCode, first.stderr()).toBeNull();
        await new Promise((r) => setTimeout(r, 5));
      }
      first.child.kill('SIGKILL');
      await first.done;
      // the checkpoint holds the last key copied, both its columns
      expect(JSON.parse(copiedUpTo!)).toEqual([expect.stringMatching(/^\d+$/), expect.stringMatching(/^\d+$/)]);
      const second = await runFerry(['local', 'online-alter', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all']);
      await writer.stop();
      expect(second.code, second.stderr).toBe(0);
      expect(second.stderr).toMatch(/copied keys after \["\d+","\d+"\]/);
      expect(await sc.columnType()).toBe('bigint(20) unsigned');
      expect(await csmFingerprint(sc.conn, sc.db, CSM)).toEqual(await csmFingerprint(sc.conn, sc.db, 'reference'));
      expect(await sc.tables()).toEqual(['_ferry_checkpoints', CSM, 'reference']);
    } finally {
      await sc.close();
    }
  });
});
