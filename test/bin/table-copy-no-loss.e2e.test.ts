import type mysql from 'mysql2/promise';
import { afterEach, describe, expect, it } from 'vitest';
import { runFerry, startFerry, type Running } from '../helpers/cli.ts';
import { admin, MYSQL_URL, OTHER_HOST_URL, tableFingerprint } from '../helpers/db.ts';
import { scenario, SRC, TGT, type Scenario } from '../helpers/scenario.ts';

/**
 * What a careful operator meets with a live application: a row whose transaction commits long after
 * higher ids are visible, and the application writing to the new table once the cut-over flags flip.
 */
describe('table-copy never exits 0 with a row lost, and never undoes the application', () => {
  let sc: Scenario | undefined;
  const open: mysql.Connection[] = [];
  afterEach(async () => {
    for (const c of open.splice(0)) await c.end().catch(() => undefined);
    await sc?.close();
    sc = undefined;
  });

  const approve = (step: string) => runFerry(['approve', sc!.input().migrationId as string, '--step', step, '--state-dir', sc!.stateDir]);

  /** Every other id handed out, as with auto_increment_increment = 2 (or the ids upserts and rollbacks burn). */
  const EVERY_OTHER_ID = 'SET SESSION auto_increment_increment = 2, auto_increment_offset = 2';

  /** A session that inserts a row and keeps its transaction open: its id is taken, the row invisible. */
  async function lateRow(s: Scenario, everyOtherId = false): Promise<{ id: string; commit: () => Promise<void> }> {
    const late = await admin();
    open.push(late);
    if (everyOtherId) await late.query(EVERY_OTHER_ID);
    await late.query('START TRANSACTION');
    const [r] = await late.query(`INSERT INTO \`${s.src}\`.${SRC} (created, state, student_module_id) VALUES (NOW(6), 'committed late', 7)`);
    return { id: String((r as { insertId: number }).insertId), commit: async () => void (await late.query('COMMIT')) };
  }

  /** Other sessions insert and commit rows with higher ids while the late one is open. */
  async function laterRows(s: Scenario, n: number, everyOtherId = false): Promise<void> {
    if (everyOtherId) await s.conn.query(EVERY_OTHER_ID);
    for (let i = 0; i < n; i++) await s.conn.query(`INSERT INTO \`${s.src}\`.${SRC} (created, state, student_module_id) VALUES (NOW(6), 'on time', ?)`, [i]);
  }

  /**
   * With the run waiting for the cut-over approval: the late row commits, both approvals are given,
   * and the run must end with that row copied and the target holding everything the source held.
   */
  async function commitLateAndFinish(s: Scenario, running: Running, late: { id: string; commit: () => Promise<void> }) {
    await late.commit();
    const everything = await tableFingerprint(s.conn, s.src, SRC);
    expect((await approve('cutover')).code).toBe(0);
    await running.waitFor(/waiting for approval "cleanup"/);
    expect(await targetRow(s, late.id)).toEqual({ state: 'committed late' });
    expect((await approve('cleanup')).code).toBe(0);
    const run = await running.done;
    expect(run.code, run.stderr).toBe(0);
    expect(run.last).toMatchObject({ phase: 'done', lateRowsCopied: '1' });
    expect(await tableFingerprint(s.conn, s.tgt, TGT)).toEqual(everything);
    return { run, everything };
  }

  async function targetRow(s: Scenario, id: string): Promise<{ state: string | null } | undefined> {
    const [rows] = await s.conn.query(`SELECT state FROM \`${s.tgt}\`.${TGT} WHERE id = ?`, [id]);
    return (rows as { state: string | null }[])[0];
  }

  const servers = { 'one server': {}, 'two servers (rows streamed)': { FERRY_MYSQL_EDXAPP: MYSQL_URL, FERRY_MYSQL_CSMH: OTHER_HOST_URL } };

  describe.each(Object.entries(servers))('%s', (_name, env) => {
    it.each(['none', 'trickle-delete', 'truncate'])('a row committed while the cut-over approval waits reaches the target (cleanup %s)', async (mode) => {
      sc = await scenario({ rows: 3000 });
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

  it('ids with gaps everywhere (every other id): the ledger keeps only the holes that can still fill, and a row whose transaction began during the copy and committed late reaches the target', async () => {
    sc = await scenario({ rows: 40_000, first: 2n, step: 2n, stateBytes: 100 });
    const s = sc;
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

  it('ids with gaps everywhere and a writer open since before the run: spans with too many holes to keep are settled by counting, and the late row reaches the target', async () => {
    sc = await scenario({ rows: 20_000, first: 2n, step: 2n });
    const s = sc;
    const late = await lateRow(s, true);
    await laterRows(s, 20, true);
    const running = startFerry(['local', 'table-copy', '--input', s.inputFile({ chunk: { targetMillis: 500, minRows: 8000, maxRows: 10000 }, cleanup: { mode: 'none' } }), '--state-dir', s.stateDir]);
    await running.waitFor(/waiting for approval "cutover"/);
    const [unknown] = await s.conn.query(`SELECT COUNT(*) AS n FROM \`${s.tgt}\`._ferry_ledger WHERE holes = 'null'`);
    expect(Number((unknown as { n: string }[])[0]!.n)).toBeGreaterThan(0);
    await commitLateAndFinish(s, running, late);
  });

  it('waits for a transaction still open when the cut-over flags flip, then copies its row (however often INNODB_TRX is read meanwhile)', async () => {
    sc = await scenario({ rows: 2000 });
    const late = await lateRow(sc);
    await laterRows(sc, 5);
    // a monitor reading INNODB_TRX every 30 ms keeps that cache stale: the wait must not depend on it
    const monitor = await admin();
    open.push(monitor);
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
    expect((await approve('cleanup')).code).toBe(0);
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
    sc = await scenario({ rows: 3000 });
    const s = sc;
    const running: Running = startFerry(['local', 'table-copy', '--input', s.inputFile({ cleanup: { mode: 'trickle-delete', batchRows: 700 } }), '--state-dir', s.stateDir, '--approve', 'cutover']);
    await running.waitFor(/waiting for approval "cleanup"/);
    const before = await tableFingerprint(s.conn, s.tgt, TGT);
    expect(before.rows).toBe('3000');
    // learner data retirement deletes a row, and a grade is corrected, in the new table only
    await s.conn.query(`DELETE FROM \`${s.tgt}\`.${TGT} WHERE id = 10`);
    await s.conn.query(`UPDATE \`${s.tgt}\`.${TGT} SET state = 'changed by the application' WHERE id = 20`);
    expect((await approve('cleanup')).code).toBe(0);
    const run = await running.done;
    expect(run.code, run.stderr).toBe(0);
    expect(await targetRow(s, '10')).toBeUndefined();
    expect(await targetRow(s, '20')).toEqual({ state: 'changed by the application' });
    expect((await tableFingerprint(s.conn, s.tgt, TGT)).rows).toBe('2999');
    expect((await tableFingerprint(s.conn, s.src, SRC)).rows).toBe('0');
  });
});
