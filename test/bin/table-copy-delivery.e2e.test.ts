import type mysql from 'mysql2/promise';
import { afterEach, describe, expect, it } from 'vitest';
import { runFerry, startFerry } from '../helpers/cli.ts';
import { admin, tableFingerprint } from '../helpers/db.ts';
import { scenario, SRC, TGT, type Scenario } from '../helpers/scenario.ts';

/**
 * The rows table-copy delivers after the cut-over: a row the new table refuses, a run that stops
 * between two writes, and the application's own open transaction on the new table.
 */
describe('table-copy delivers a row once, wholly, or not at all', () => {
  let sc: Scenario | undefined;
  const open: mysql.Connection[] = [];
  afterEach(async () => {
    for (const c of open.splice(0)) await c.end().catch(() => undefined);
    await sc?.close();
    sc = undefined;
  });

  const approve = (step: string) => runFerry(['approve', sc!.input().migrationId as string, '--step', step, '--state-dir', sc!.stateDir]);
  const rowsOf = async (db: string, table: string, where: string) => {
    const [r] = await sc!.conn.query(`SELECT id, state FROM \`${db}\`.\`${table}\` WHERE ${where} ORDER BY id`);
    return (r as { id: string; state: string }[]).map((x) => ({ id: String(x.id), state: x.state }));
  };

  it.each(['trickle-delete', 'truncate', 'none'])('a row the new table refuses after the cut-over is kept in the old one, and the run says why (cleanup %s)', async (mode) => {
    sc = await scenario({ rows: 300 });
    // the new table has a unique key of its own
    await sc.conn.query(`ALTER TABLE \`${sc.tgt}\`.${TGT} ADD UNIQUE KEY one_state (state(64))`);
    const running = startFerry(['local', 'table-copy', '--input', sc.inputFile({ cleanup: { mode, batchRows: 50 } }), '--state-dir', sc.stateDir], { FERRY_LOCAL_RETRY_MILLIS: '20' });
    await running.waitFor(/waiting for approval "cutover"/);
    // the application, on the new flags, writes a row to the new table; a server still on the old ones writes the same to the old table
    await sc.conn.query(`INSERT INTO \`${sc.tgt}\`.${TGT} (created, state, student_module_id) VALUES (NOW(6), 'req-42', 1)`);
    await sc.conn.query(`INSERT INTO \`${sc.src}\`.${SRC} (created, state, student_module_id) VALUES (NOW(6), 'req-42', 2)`);
    expect((await approve('cutover')).code).toBe(0);
    const run = await running.done;
    expect(run.code, run.stderr).toBe(1);
    expect(run.last).toMatchObject({ error: 'VerificationFailed', cause: expect.stringMatching(/cannot be written to .*Duplicate entry 'req-42' for key 'one_state'.*no source row was deleted/) });
    expect(await rowsOf(sc.src, SRC, "state = 'req-42'")).toHaveLength(1);
    expect((await tableFingerprint(sc.conn, sc.src, SRC)).rows).toBe('301');
  });

  it('a value the new table would change (another character set) is not delivered, and not deleted', async () => {
    sc = await scenario({ rows: 100 });
    await sc.conn.query(`ALTER TABLE \`${sc.tgt}\`.${TGT} MODIFY state longtext CHARACTER SET latin1 NULL`);
    const running = startFerry(['local', 'table-copy', '--input', sc.inputFile({ cleanup: { mode: 'trickle-delete', batchRows: 50 } }), '--state-dir', sc.stateDir], { FERRY_LOCAL_RETRY_MILLIS: '20' });
    await running.waitFor(/waiting for approval "cutover"/);
    await sc.conn.query(`INSERT INTO \`${sc.src}\`.${SRC} (created, state, student_module_id) VALUES (NOW(6), ?, 3)`, ['Grüße, 日本語のコメント 👍']);
    expect((await approve('cutover')).code).toBe(0);
    // the sweep, before the cleanup approval is even asked for, finds the row the target would change
    await running.waitFor(/waiting for approval "cleanup"|FAILED/);
    const run = await running.done;
    expect(run.code, run.stderr).toBe(1);
    expect(run.last).toMatchObject({ error: 'VerificationFailed', cause: expect.stringMatching(/cannot be written to/) });
    expect(await rowsOf(sc.src, SRC, 'student_module_id = 3 AND state LIKE ?'.replace('?', "'Grüße%'"))).toHaveLength(1);
  });

  it('a run stopped between copying a row and recording it leaves neither: the row is not in the new table until it is recorded', async () => {
    sc = await scenario({ rows: 200 });
    const running = startFerry(['local', 'table-copy', '--input', sc.inputFile({ cleanup: { mode: 'none' } }), '--state-dir', sc.stateDir], { FERRY_LOCAL_RETRY_MILLIS: '20' });
    await running.waitFor(/waiting for approval "cutover"/);
    const [r] = await sc.conn.query(`INSERT INTO \`${sc.src}\`.${SRC} (created, state, student_module_id) VALUES (NOW(6), 'straggler', 4)`);
    const straggler = String((r as { insertId: number }).insertId);
    // recording the delivery fails, as a crash right after the copy would leave it
    await sc.conn.query(`CREATE TRIGGER \`${sc.tgt}\`.fail_ledger BEFORE INSERT ON \`${sc.tgt}\`._ferry_ledger FOR EACH ROW BEGIN IF NEW.lo > 200 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected failure'; END IF; END`);
    expect((await approve('cutover')).code).toBe(0);
    const failed = await running.done;
    expect(failed.code, failed.stderr).toBe(1);
    expect(await rowsOf(sc.tgt, TGT, `id = ${straggler}`)).toEqual([]);
    await sc.conn.query(`DROP TRIGGER \`${sc.tgt}\`.fail_ledger`);
    const again = await runFerry(['local', 'table-copy', '--input', sc.inputFile({ cleanup: { mode: 'none' } }), '--state-dir', sc.stateDir, '--approve', 'all']);
    expect(again.code, again.stderr).toBe(0);
    expect(await rowsOf(sc.tgt, TGT, `id = ${straggler}`)).toEqual([{ id: straggler, state: 'straggler' }]);
  });

  it('truncate: a run stopped after the TRUNCATE and before recording it loses no row written since', async () => {
    sc = await scenario({ rows: 200 });
    const file = sc.inputFile({ cleanup: { mode: 'truncate' } });
    // recording "done" fails, as a crash right after the TRUNCATE would leave it
    const first = startFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'cutover']);
    await first.waitFor(/waiting for approval "cleanup"/);
    first.child.kill('SIGKILL');
    await first.done.catch(() => undefined);
    await sc.conn.query(`CREATE TRIGGER \`${sc.tgt}\`.fail_done BEFORE UPDATE ON \`${sc.tgt}\`._ferry_checkpoints FOR EACH ROW BEGIN IF NEW.phase = 'done' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected failure'; END IF; END`);
    const failed = await runFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all'], { FERRY_LOCAL_RETRY_MILLIS: '20' });
    expect(failed.code, failed.stderr).toBe(1);
    expect((await tableFingerprint(sc.conn, sc.src, SRC)).rows).toBe('0');
    // a server still on the old flags writes a row: the counter was put back, so its id is above every copied one
    const [r] = await sc.conn.query(`INSERT INTO \`${sc.src}\`.${SRC} (created, state, student_module_id) VALUES (NOW(6), 'after the truncate', 5)`);
    expect(BigInt((r as { insertId: number }).insertId)).toBeGreaterThan(200n);
    await sc.conn.query(`DROP TRIGGER \`${sc.tgt}\`.fail_done`);
    const again = await runFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all']);
    expect(again.code, again.stderr).toBe(0);
    expect(await rowsOf(sc.tgt, TGT, "state = 'after the truncate'")).toHaveLength(1);
    expect((await tableFingerprint(sc.conn, sc.src, SRC)).rows).toBe('0');
  });

  it('truncate: when the counter was not put back, ids handed out again stop the run instead of being truncated', async () => {
    sc = await scenario({ rows: 200 });
    const file = sc.inputFile({ cleanup: { mode: 'truncate' } });
    const first = startFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'cutover']);
    await first.waitFor(/waiting for approval "cleanup"/);
    first.child.kill('SIGKILL');
    await first.done.catch(() => undefined);
    await sc.conn.query(`CREATE TRIGGER \`${sc.tgt}\`.fail_done BEFORE UPDATE ON \`${sc.tgt}\`._ferry_checkpoints FOR EACH ROW BEGIN IF NEW.phase = 'done' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected failure'; END IF; END`);
    const failed = await runFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all'], { FERRY_LOCAL_RETRY_MILLIS: '20' });
    expect(failed.code, failed.stderr).toBe(1);
    // as if the run had stopped between the TRUNCATE and putting the counter back
    await sc.conn.query(`TRUNCATE TABLE \`${sc.src}\`.${SRC}`);
    await sc.conn.query(`INSERT INTO \`${sc.src}\`.${SRC} (created, state, student_module_id) VALUES (NOW(6), 'id handed out again', 6)`);
    await sc.conn.query(`DROP TRIGGER \`${sc.tgt}\`.fail_done`);
    const again = await runFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all'], { FERRY_LOCAL_RETRY_MILLIS: '20' });
    expect(again.code, again.stderr).toBe(1);
    expect(again.last).toMatchObject({ error: 'VerificationFailed', cause: expect.stringMatching(/ids 1 of .* holds other rows under those ids/) });
    expect(await rowsOf(sc.src, SRC, '1 = 1')).toEqual([{ id: '1', state: 'id handed out again' }]);
  });

  it('the application’s own open transaction on the new table does not hold up the sweep', async () => {
    sc = await scenario({ rows: 300 });
    const running = startFerry(['local', 'table-copy', '--input', sc.inputFile({ cleanup: { mode: 'none' }, catchUp: { quietSeconds: 1, pollSeconds: 1 } }), '--state-dir', sc.stateDir]);
    await running.waitFor(/waiting for approval "cutover"/);
    const app = await admin();
    open.push(app);
    await app.query('START TRANSACTION');
    await app.query(`INSERT INTO \`${sc.tgt}\`.${TGT} (created, state, student_module_id) VALUES (NOW(6), 'in flight', 7)`);
    expect((await approve('cutover')).code).toBe(0);
    await running.waitFor(/waiting for approval "cleanup"/, 20_000);
    await app.query('COMMIT');
    expect((await approve('cleanup')).code).toBe(0);
    expect((await running.done).code).toBe(0);
  });
});
