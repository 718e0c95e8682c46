import { describe, expect, it } from 'vitest';
import { startFerry } from '../helpers/cli.ts';
import { tableFingerprint } from '../helpers/db.ts';
import { lateRows } from '../helpers/late-rows.ts';
import { scenario, SRC } from '../helpers/scenario.ts';

/**
 * How few holes the ledger keeps rests on which write transactions are open on the whole server
 * (INNODB_TRX says nothing of tables): another file's long transaction makes ferry keep every hole,
 * by design. So this file runs after the others, on its own (vitest.config.ts).
 */
describe('table-copy keeps only the holes in the ids that can still fill', () => {
  const { use, lateRow, laterRows, targetRow, commitLateAndFinish } = lateRows();

  it('ids with gaps everywhere (every other id): the ledger keeps only the holes that can still fill, and a row whose transaction began during the copy and committed late reaches the target', async () => {
    const s = use(await scenario({ rows: 40_000, first: 2n, step: 2n, stateBytes: 100 }));
    const running = startFerry(['local', 'table-copy', '--input', s.inputFile({ chunk: { targetMillis: 50, minRows: 100, maxRows: 2000 }, cleanup: { mode: 'trickle-delete', batchRows: 5000 } }), '--state-dir', s.stateDir]);
    for (;;) {
      const [rows] = await s.conn.query(`SELECT phase, state FROM \`${s.tgt}\`._ferry_checkpoints`).catch(() => [[]] as never);
      const row = (rows as { phase: string; state: string }[])[0];
      if (row?.phase === 'copy' && BigInt(JSON.parse(row.state).rowsCopied) > 2000n) break;
      expect(running.child.exitCode, running.stderr()).toBeNull();
      await new Promise((r) => setTimeout(r, 5));
    }
    // the application, handing out every other id, opens a transaction that inserts and stays open, while later rows commit
    const late = await lateRow(s, true);
    await laterRows(s, 20, true);
    await running.waitFor(/waiting for approval "cutover"/);
    expect(await targetRow(s, late.id)).toBeUndefined();
    // 20,000 gaps in the copied ids, yet the ledger keeps only the holes near the top, where an open writer could still commit
    const [kept] = await s.conn.query(`SELECT COALESCE(SUM(hole_count), 0) AS holes, MAX(LENGTH(holes)) AS longest FROM \`${s.tgt}\`._ferry_ledger`);
    const { holes, longest } = (kept as { holes: string; longest: string }[])[0]!;
    expect(Number(holes)).toBeGreaterThan(0);
    expect(Number(holes)).toBeLessThan(200);
    expect(Number(longest)).toBeLessThan(64 * 1024);
    await commitLateAndFinish(s, running, late);
    expect((await tableFingerprint(s.conn, s.src, SRC)).rows).toBe('0');
  });
});
