import { describe, expect, it } from 'vitest';
import { startFerry, type Running } from '../helpers/cli.ts';
import { MYSQL_URL, OTHER_HOST_URL, tableFingerprint } from '../helpers/db.ts';
import { lateRows } from '../helpers/late-rows.ts';
import { scenario, SRC, TGT } from '../helpers/scenario.ts';

/**
 * What a careful operator meets with a live application: a row whose transaction commits long after
 * higher ids are visible, and the application writing to the new table once the cut-over flags flip.
 * (How few holes the ledger keeps rests on which transactions are open on the whole server: that is
 * table-copy-no-loss-holes.e2e.test.ts, run on its own.)
 */
describe('table-copy never exits 0 with a row lost, and never undoes the application', () => {
  const { use, session, approve, lateRow, laterRows, targetRow, commitLateAndFinish } = lateRows();

  const servers = { 'one server': {}, 'two servers (rows streamed)': { FERRY_MYSQL_EDXAPP: MYSQL_URL, FERRY_MYSQL_CSMH: OTHER_HOST_URL } };

  describe.each(Object.entries(servers))('%s', (_name, env) => {
    it.each(['none', 'trickle-delete', 'truncate'])('a row committed while the cut-over approval waits reaches the target (cleanup %s)', async (mode) => {
      const sc = use(await scenario({ rows: 3000 }));
      const late = await lateRow(sc);
      await laterRows(sc, 20);
      const running = startFerry(['local', 'table-copy', '--input', sc.inputFile({ cleanup: { mode, batchRows: 700 } }), '--state-dir', sc.stateDir], env);
      await running.waitFor(/waiting for approval "cutover"/);
      expect(await targetRow(sc, late.id)).toBeUndefined();
      const { everything } = await commitLateAndFinish(sc, running, late);
      expect(everything.rows).toBe('3021');
      expect((await tableFingerprint(sc.conn, sc.src, SRC)).rows).toBe(mode === 'none' ? '3021' : '0');
    });
  });

  it('ids with gaps everywhere and a writer open since before the run: spans with too many holes to keep are settled by counting, and the late row reaches the target', async () => {
    const s = use(await scenario({ rows: 20_000, first: 2n, step: 2n }));
    const late = await lateRow(s, true);
    await laterRows(s, 20, true);
    const running = startFerry(['local', 'table-copy', '--input', s.inputFile({ chunk: { targetMillis: 500, minRows: 8000, maxRows: 10000 }, cleanup: { mode: 'none' } }), '--state-dir', s.stateDir]);
    await running.waitFor(/waiting for approval "cutover"/);
    const [unknown] = await s.conn.query(`SELECT COUNT(*) AS n FROM \`${s.tgt}\`._ferry_ledger WHERE holes = 'null'`);
    expect(Number((unknown as { n: string }[])[0]!.n)).toBeGreaterThan(0);
    await commitLateAndFinish(s, running, late);
  });

  it('waits for a transaction still open when the cut-over flags flip, then copies its row (however often INNODB_TRX is read meanwhile)', async () => {
    const sc = use(await scenario({ rows: 2000 }));
    const late = await lateRow(sc);
    await laterRows(sc, 5);
    // a monitor reading INNODB_TRX every 30 ms keeps that cache stale: the wait must not depend on it
    const monitor = await session();
    let monitoring = true;
    const polling = (async () => {
      while (monitoring) {
        await monitor.query('SELECT COUNT(*) FROM information_schema.INNODB_TRX');
        await new Promise((r) => setTimeout(r, 30));
      }
    })();
    const running = startFerry(['local', 'table-copy', '--input', sc.inputFile({ cleanup: { mode: 'none' } }), '--state-dir', sc.stateDir, '--approve', 'cutover']);
    await running.waitFor(/waiting for .*transaction/);
    await new Promise((r) => setTimeout(r, 1500));
    expect(running.child.exitCode).toBeNull();
    expect(running.stderr()).not.toMatch(/waiting for approval "cleanup"/);
    await late.commit();
    await running.waitFor(/waiting for approval "cleanup"/);
    monitoring = false;
    await polling;
    expect((await approve(sc, 'cleanup')).code).toBe(0);
    const run = await running.done;
    expect(run.code, run.stderr).toBe(0);
    expect(await targetRow(sc, late.id)).toEqual({ state: 'committed late' });
    expect(run.last).toMatchObject({ lateRowsCopied: '1' });
    // (the oldest open write transaction on the server may be another test file's: the files run in parallel,
    // and one whose session has just gone has no user@host to name: "thread N, started …")
    expect(run.stderr).toMatch(/waiting for the transactions that wrote to courseware_studentmodulehistory .* oldest open write transaction on the server is thread \d+(?: \([^)]*\))?, started .*, \d+ rows changed/);
    expect(await tableFingerprint(sc.conn, sc.tgt, TGT)).toEqual(await tableFingerprint(sc.conn, sc.src, SRC));
  });

  it('after the cut-over the new table is the application’s: a row it deleted stays deleted, a row it updated keeps its value', async () => {
    const s = use(await scenario({ rows: 3000 }));
    const running: Running = startFerry(['local', 'table-copy', '--input', s.inputFile({ cleanup: { mode: 'trickle-delete', batchRows: 700 } }), '--state-dir', s.stateDir, '--approve', 'cutover']);
    await running.waitFor(/waiting for approval "cleanup"/);
    const before = await tableFingerprint(s.conn, s.tgt, TGT);
    expect(before.rows).toBe('3000');
    // learner data retirement deletes a row, and a grade is corrected, in the new table only
    await s.conn.query(`DELETE FROM \`${s.tgt}\`.${TGT} WHERE id = 10`);
    await s.conn.query(`UPDATE \`${s.tgt}\`.${TGT} SET state = 'changed by the application' WHERE id = 20`);
    expect((await approve(s, 'cleanup')).code).toBe(0);
    const run = await running.done;
    expect(run.code, run.stderr).toBe(0);
    expect(await targetRow(s, '10')).toBeUndefined();
    expect(await targetRow(s, '20')).toEqual({ state: 'changed by the application' });
    expect((await tableFingerprint(s.conn, s.tgt, TGT)).rows).toBe('2999');
    expect((await tableFingerprint(s.conn, s.src, SRC)).rows).toBe('0');
  });
});
