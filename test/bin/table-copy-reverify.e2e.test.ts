import { afterEach, describe, expect, it } from 'vitest';
import { runFerry, startFerry } from '../helpers/cli.ts';
import { tableFingerprint } from '../helpers/db.ts';
import { scenario, SRC, TGT, type Scenario } from '../helpers/scenario.ts';

/** The re-verification beside a pending cut-over approval (lambdas/table-copy/reverify.ts), through `ferry local`. */
describe('table-copy re-verifies while the cut-over approval waits', () => {
  let sc: Scenario | undefined;
  afterEach(async () => {
    await sc?.close();
    sc = undefined;
  });

  const stateOf = async (db: string, table: string, id: number) => {
    const [rows] = await sc!.conn.query(`SELECT state FROM \`${db}\`.\`${table}\` WHERE id = ?`, [id]);
    return (rows as { state: string | null }[])[0]?.state;
  };

  it('writes again a source change the untouched target missed, keeps the application\'s own change, and says when it last looked', async () => {
    sc = await scenario({ rows: 2000 });
    const migrationId = sc.input().migrationId as string;
    const file = sc.inputFile({ reverify: { everySeconds: 1 }, cleanup: { mode: 'none' } });
    const run = startFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir]);
    await run.waitFor(/waiting for approval "cutover"/);
    await run.waitFor(/re-verification: verified 0 minutes ago, \d+ ranges, 0 differences/);

    // an old application server still updates a row of the old table; nobody touched the new one
    await sc.conn.query(`UPDATE \`${sc.src}\`.${SRC} SET state = 'changed after verify' WHERE id = 500`);
    // the application updates a row of the new table (in another verified range), which is its own now
    await sc.conn.query(`UPDATE \`${sc.tgt}\`.${TGT} SET state = 'the application' WHERE id = 1500`);
    await run.waitFor(/re-verification: ids -?\d+\.\.\d+ changed in courseware_studentmodulehistory after they were verified, and were written again/);
    await run.waitFor(/re-verification: verified 0 minutes ago, \d+ ranges, 0 differences \(.*1 changed by the application in the new table \(kept\)/);
    expect(await stateOf(sc.tgt, TGT, 500)).toBe('changed after verify');
    expect(await stateOf(sc.tgt, TGT, 1500)).toBe('the application');

    expect((await runFerry(['approve', migrationId, '--step', 'cutover', '--state-dir', sc.stateDir])).code).toBe(0);
    await run.waitFor(/waiting for approval "cleanup"/);
    expect((await runFerry(['approve', migrationId, '--step', 'cleanup', '--state-dir', sc.stateDir])).code).toBe(0);
    const done = await run.done;
    expect(done.code, done.stderr).toBe(0);
    expect(done.stderr).toMatch(/Reverify \d+/);
    expect(await stateOf(sc.tgt, TGT, 500)).toBe('changed after verify');
    expect(await stateOf(sc.tgt, TGT, 1500)).toBe('the application');
    expect((await tableFingerprint(sc.conn, sc.tgt, TGT)).rows).toBe('2000');
  });

  it('refuses the cut-over while a row changed on both sides since verification, naming it; once made right, it goes on', async () => {
    sc = await scenario({ rows: 2000 });
    const migrationId = sc.input().migrationId as string;
    const file = sc.inputFile({ reverify: { everySeconds: 1 }, cleanup: { mode: 'none' } });
    const run = startFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir]);
    await run.waitFor(/re-verification: verified 0 minutes ago/);
    await sc.conn.query(`UPDATE \`${sc.src}\`.${SRC} SET state = 'old table' WHERE id = 800`);
    await sc.conn.query(`UPDATE \`${sc.tgt}\`.${TGT} SET state = 'new table' WHERE id = 800`);
    await run.waitFor(/re-verification: ids -?\d+\.\.\d+: 800 \(differs\): both tables changed after it was verified/);
    await run.waitFor(/re-verification: verified 0 minutes ago, \d+ ranges, 1 difference\b/);
    expect((await runFerry(['approve', migrationId, '--step', 'cutover', '--state-dir', sc.stateDir])).code).toBe(0);
    const failed = await run.done;
    expect(failed.code).toBe(1);
    expect(failed.last).toMatchObject({ status: 'FAILED', error: 'VerificationFailed', cause: expect.stringMatching(/the cut-over flags were not set: .*800 \(differs\)/) });
    // the application still reads both tables: the cut-over flag was not flipped
    expect(sc.flags()[`/ferry/${migrationId}/flags/ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`]).toBe('true');

    // a person decides which is right and makes the new table say so; the run asks again and goes on
    await sc.conn.query(`UPDATE \`${sc.tgt}\`.${TGT} SET state = 'old table' WHERE id = 800`);
    const again = await runFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all']);
    expect(again.code, again.stderr).toBe(0);
    expect(sc.flags()[`/ferry/${migrationId}/flags/ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`]).toBe('false');
  });

  it('killed while it re-verifies beside the approval, a new run asks again and finishes with every row', async () => {
    sc = await scenario({ rows: 6000 });
    const file = sc.inputFile({ reverify: { everySeconds: 1 }, chunk: { minRows: 50, maxRows: 100 }, cleanup: { mode: 'none' } });
    const first = startFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir]);
    await first.waitFor(/re-verification: verified 0 minutes ago, \d+ ranges, 0 differences/);
    // the next pass is under way within a couple of seconds: kill it in the middle of one
    await new Promise((r) => setTimeout(r, 1500));
    first.child.kill('SIGKILL');
    expect((await first.done).signal).toBe('SIGKILL');
    const second = await runFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all']);
    expect(second.code, second.stderr).toBe(0);
    expect(await tableFingerprint(sc.conn, sc.tgt, TGT)).toEqual(await tableFingerprint(sc.conn, sc.src, SRC));
    expect(second.last).toMatchObject({ phase: 'done' });
  });

  it('tells rows committed late into holes from real changes, however many there are, and blocks neither on them nor on the application\'s own edits', async () => {
    // ids 1, 4, 7, …: every span has holes
    sc = await scenario({ rows: 4000, first: 1n, step: 3n });
    const migrationId = sc.input().migrationId as string;
    const file = sc.inputFile({ reverify: { everySeconds: 1 }, chunk: { minRows: 4500, maxRows: 4500 }, cleanup: { mode: 'none' } });
    const run = startFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir]);
    await run.waitFor(/re-verification: verified 0 minutes ago, \d+ ranges, 0 differences/);
    // spans: ids up to 4500, 4501..9000, 9001..11998. Rows committed late into the first one's holes:
    // 1,500 of them, more than a look at the first 1,000 differing rows would see past
    await sc.conn.query(`SET SESSION max_recursive_iterations = 5000`);
    await sc.conn.query(`INSERT INTO \`${sc.src}\`.${SRC} (id, created, state, student_module_id) WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < 1499) SELECT 3 * n + 2, NOW(6), 'late', n FROM s`);
    // an old server edits a row of the old table in that span, past the late rows; the application edits a row of the new table in the next
    await sc.conn.query(`UPDATE \`${sc.src}\`.${SRC} SET state = 'changed after verify' WHERE id = 4000`);
    await sc.conn.query(`UPDATE \`${sc.tgt}\`.${TGT} SET state = 'the application' WHERE id = 5995`);
    await run.waitFor(/re-verification: verified 0 minutes ago, 3 ranges, 0 differences \(1 repaired, 1 changed by the application in the new table \(kept\)\)/, 60_000);
    expect(run.stderr()).toMatch(/ids -?\d+\.\.\d+ changed in courseware_studentmodulehistory after they were verified, and were written again/);
    expect(await stateOf(sc.tgt, TGT, 4000)).toBe('changed after verify');
    expect((await runFerry(['approve', migrationId, '--step', 'cutover', '--state-dir', sc.stateDir])).code).toBe(0);
    await run.waitFor(/waiting for approval "cleanup"/);
    expect((await runFerry(['approve', migrationId, '--step', 'cleanup', '--state-dir', sc.stateDir])).code).toBe(0);
    const done = await run.done;
    expect(done.code, done.stderr).toBe(0);
    // every late row arrived, the application's edit stayed, the old server's change came across
    expect((await tableFingerprint(sc.conn, sc.tgt, TGT)).rows).toBe('5500');
    expect(await stateOf(sc.tgt, TGT, 5995)).toBe('the application');
    expect(await stateOf(sc.tgt, TGT, 2)).toBe('late');
    expect(await stateOf(sc.tgt, TGT, 4000)).toBe('changed after verify');
  });
});
