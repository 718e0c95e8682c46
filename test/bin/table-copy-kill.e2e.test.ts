import { describe, expect, it } from 'vitest';
import { runFerry, startFerry } from '../helpers/cli.ts';
import { phaseGate, tableFingerprint } from '../helpers/db.ts';
import { scenario, SRC, TGT } from '../helpers/scenario.ts';

/** A SIGKILL in each later phase of table-copy, then the same command again: the end state is the uninterrupted one. */
describe.each(['catch-up', 'verify', 'cleanup'])('ferry local table-copy killed during %s', (phase) => {
  it('resumes from the checkpoint and ends with every row in the target and none left in the source', async () => {
    const sc = await scenario({ rows: 30000 });
    try {
      let before = await tableFingerprint(sc.conn, sc.src, SRC);
      const settings = {
        chunk: { targetMillis: 10, minRows: 50, maxRows: 100 },
        catchUp: { quietSeconds: 3, pollSeconds: 1 },
        cleanup: { mode: 'trickle-delete', batchRows: 200 },
      };
      const file = sc.inputFile(settings);
      if (phase === 'verify') {
        // Verify has nothing left when every chunk was verified behind the copy: the run is killed at the cut-over
        // approval and its checkpoint taken back to the middle of Verify, as a kill there leaves it (the ledger ahead of it)
        const first = startFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir]);
        await first.waitFor(/waiting for approval "cutover"/);
        first.child.kill('SIGKILL');
        expect((await first.done).signal).toBe('SIGKILL');
        await sc.conn.query(`UPDATE \`${sc.tgt}\`._ferry_checkpoints SET phase = 'verify', state = JSON_SET(state, '$.verifiedUpTo', '15000')`);
      }
      // the catch-up has work only when the source received rows since Preflight: one arrives during the copy,
      // and the throttle holds the catch-up there until the run is killed
      const held = phase === 'catch-up' ? sc.inputFile({ ...settings, throttle: { waitSeconds: 1, query: await phaseGate(sc.tgt, 'catch-up') } }) : file;
      const first = startFerry(['local', 'table-copy', '--input', held, '--state-dir', sc.stateDir, '--approve', 'all']);
      let failed: unknown = null;
      let arrived = phase !== 'catch-up';
      for (;;) {
        const [rows] = await sc.conn.query(`SELECT phase, state FROM \`${sc.tgt}\`._ferry_checkpoints`).catch((err: unknown) => ((failed = err), [[]] as never));
        const row = (rows as { phase: string; state: string }[])[0];
        const state = row ? JSON.parse(row.state) : null;
        if (!arrived && row?.phase === 'copy') {
          await sc.conn.query(`INSERT INTO \`${sc.src}\`.${SRC} (created, state, student_module_id) VALUES (NOW(6), 'arrived during the copy', 1)`);
          before = await tableFingerprint(sc.conn, sc.src, SRC);
          arrived = true;
        }
        const under = phase === 'cleanup' ? BigInt(state?.rowsDeleted ?? 0) > 1000n : true;
        if (row?.phase === phase && under) break;
        expect(first.child.exitCode, `${first.stderr()}\nlast error reading the checkpoint: ${String(failed)}`).toBeNull();
        await new Promise((r) => setTimeout(r, 5));
      }
      first.child.kill('SIGKILL');
      expect((await first.done).signal).toBe('SIGKILL');
      const second = await runFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all']);
      expect(second.code, second.stderr).toBe(0);
      expect(await tableFingerprint(sc.conn, sc.tgt, TGT)).toEqual(before);
      expect((await tableFingerprint(sc.conn, sc.src, SRC)).rows).toBe('0');
      expect(second.last).toMatchObject({ phase: 'done' });
      // a batch deleted just before the kill, and not yet checkpointed, is deleted but not counted
      const counted = BigInt(second.last!.rowsDeleted as string);
      expect(counted).toBeLessThanOrEqual(BigInt(before.rows));
      expect(counted).toBeGreaterThanOrEqual(BigInt(before.rows) - 200n);
    } finally {
      await sc.close();
    }
  });
});
