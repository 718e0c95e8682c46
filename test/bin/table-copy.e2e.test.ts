import { afterEach, describe, expect, it } from 'vitest';
import { runFerry, startFerry } from '../helpers/cli.ts';
import { OTHER_HOST_URL, MYSQL_URL, tableFingerprint } from '../helpers/db.ts';
import { scenario, SRC, TGT, type Scenario } from '../helpers/scenario.ts';

/** Local runs of statemachines/table-copy.asl.json through `npx ferry local`, against the real MariaDB. */
describe('ferry local table-copy', () => {
  let sc: Scenario | undefined;
  afterEach(async () => {
    await sc?.close();
    sc = undefined;
  });

  const local = (file: string, extra: string[] = ['--approve', 'all'], env: NodeJS.ProcessEnv = {}) =>
    runFerry(['local', 'table-copy', '--input', file, '--state-dir', sc!.stateDir, ...extra], env);

  it('moves a table with gaps and ids up to 2^31-1, verifies it, flips flags and empties the source', async () => {
    sc = await scenario({ rows: 4000, first: 1n, step: 7n });
    await sc.conn.query(`INSERT INTO \`${sc.src}\`.${SRC} (id, created, student_module_id) VALUES (2147483600, NOW(6), 1), (2147483647, NOW(6), 2)`);
    const before = await tableFingerprint(sc.conn, sc.src, SRC);
    const run = await local(sc.inputFile());
    expect(run.code, run.stderr).toBe(0);
    expect(run.last).toMatchObject({ phase: 'done', rowsCopied: '4002', rowsVerified: '4002', rowsDeleted: '4002', copiedUpTo: '2147483647', cleanup: 'trickle-delete' });
    expect(await tableFingerprint(sc.conn, sc.tgt, TGT)).toEqual(before);
    expect((await tableFingerprint(sc.conn, sc.src, SRC)).rows).toBe('0');
    // target AUTO_INCREMENT was raised above the source max + idOffset before any copy
    expect(run.last!.targetAutoIncrement).toBe(String(2147483647 + 1000 + 1));
    const prefix = `/ferry/${sc.input().migrationId}/flags/`;
    expect(sc.flags()).toEqual({ [`${prefix}ENABLE_CSMH_EXTENDED`]: 'true', [`${prefix}ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`]: 'false' });
    expect(run.stderr).toMatch(/\[copy\].*rows/);
    // a second run of a finished migration changes nothing and says so
    const again = await local(sc.inputFile());
    expect(again.code, again.stderr).toBe(0);
    expect(again.last).toMatchObject({ phase: 'done', rowsCopied: '4002' });
  });

  it('copies ids above 2^53 exactly between two servers (streamed) and keeps the source with cleanup none', async () => {
    sc = await scenario({ sourceIdType: 'bigint unsigned' });
    const { seedHistory } = await import('../helpers/db.ts');
    await seedHistory(sc.conn, sc.src, SRC, 300, { first: 9007199254740900n });
    await seedHistory(sc.conn, sc.src, SRC, 50, { first: 18446744073709550000n, step: 3n });
    const before = await tableFingerprint(sc.conn, sc.src, SRC);
    const run = await local(sc.inputFile({ cleanup: { mode: 'none' }, idOffset: '0' }), ['--approve', 'all'], { FERRY_MYSQL_EDXAPP: MYSQL_URL, FERRY_MYSQL_CSMH: OTHER_HOST_URL });
    expect(run.code, run.stderr).toBe(0);
    expect(await tableFingerprint(sc.conn, sc.tgt, TGT)).toEqual(before);
    expect(before.maxId).toBe('18446744073709550147');
    expect(await tableFingerprint(sc.conn, sc.src, SRC)).toEqual(before);
    expect(run.last).toMatchObject({ copiedUpTo: '18446744073709550147', rowsDeleted: '0' });
  });

  it('resumes after SIGKILL mid-copy from the checkpoint: same data, nothing twice, nothing lost', async () => {
    sc = await scenario({ rows: 60000, stateBytes: 300 });
    const before = await tableFingerprint(sc.conn, sc.src, SRC);
    const file = sc.inputFile({ chunk: { targetMillis: 50, minRows: 50, maxRows: 200 }, cleanup: { mode: 'none' } });
    const first = startFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all']);
    // kill it at a moment the checkpoint shows the copy under way
    for (;;) {
      const [rows] = await sc.conn.query(`SELECT phase, state FROM \`${sc.tgt}\`._ferry_checkpoints`).catch(() => [[]]);
      const row = (rows as { phase: string; state: string }[])[0];
      if (row?.phase === 'copy' && BigInt(JSON.parse(row.state).rowsCopied) > 5000n) break;
      expect(first.child.exitCode, first.stderr()).toBeNull();
      await new Promise((r) => setTimeout(r, 5));
    }
    first.child.kill('SIGKILL');
    const killed = await first.done;
    expect(killed.signal).toBe('SIGKILL');
    const [cp] = await sc.conn.query(`SELECT phase, state FROM \`${sc.tgt}\`._ferry_checkpoints`);
    const checkpoint = (cp as { phase: string; state: string }[])[0]!;
    expect(checkpoint.phase).toBe('copy');
    const copiedAtKill = BigInt(JSON.parse(checkpoint.state).rowsCopied);
    expect(copiedAtKill).toBeGreaterThan(0n);
    expect(copiedAtKill).toBeLessThan(60000n);

    const second = await local(file);
    expect(second.code, second.stderr).toBe(0);
    expect(await tableFingerprint(sc.conn, sc.tgt, TGT)).toEqual(before);
    expect(second.last).toMatchObject({ rowsVerified: '60000', rangesRepaired: 0 });
    // rows counted once: the copy resumed after the last committed chunk
    expect(BigInt(second.last!.rowsCopied as string)).toBeLessThanOrEqual(60000n);
  });

  it('throttles while the throttle query says so, names why, and goes on when it clears', async () => {
    sc = await scenario({ rows: 2000 });
    await sc.conn.query(`CREATE TABLE \`${sc.src}\`.throttle_switch (on_off int NOT NULL)`);
    await sc.conn.query(`INSERT INTO \`${sc.src}\`.throttle_switch VALUES (1)`);
    const file = sc.inputFile({ throttle: { maxThreadsRunning: 200, waitSeconds: 1, query: `SELECT on_off FROM \`${sc.src}\`.throttle_switch` }, cleanup: { mode: 'none' } });
    const running = startFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all']);
    await running.waitFor(/throttled: the throttle query says wait/);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await tableFingerprint(sc.conn, sc.tgt, TGT)).rows).toBe('0');
    await sc.conn.query(`UPDATE \`${sc.src}\`.throttle_switch SET on_off = 0`);
    const run = await running.done;
    expect(run.code, run.stderr).toBe(0);
    expect((await tableFingerprint(sc.conn, sc.tgt, TGT)).rows).toBe('2000');
    expect(Number(run.last!.throttledSeconds)).toBeGreaterThanOrEqual(2);
  });

  it('refuses a second run of the same migration while the first one runs, and lets it go on', async () => {
    sc = await scenario({ rows: 200 });
    const file = sc.inputFile({ cleanup: { mode: 'none' } });
    const first = startFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir]);
    await first.waitFor(/waiting for approval "cutover"/);
    const second = await local(file);
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(new RegExp(`another ferry local run of "${sc.input().migrationId}" is running \\(pid ${first.child.pid}\\)`));
    expect((await runFerry(['approve', sc.input().migrationId as string, '--step', 'cutover', '--state-dir', sc.stateDir])).code).toBe(0);
    await first.waitFor(/waiting for approval "cleanup"/);
    expect((await runFerry(['approve', sc.input().migrationId as string, '--step', 'cleanup', '--state-dir', sc.stateDir])).code).toBe(0);
    expect((await first.done).code).toBe(0);
  });

  it('pauses on the FERRY_PAUSED flag until `ferry resume`', async () => {
    sc = await scenario({ rows: 500 });
    const file = sc.inputFile({ cleanup: { mode: 'none' } });
    const migrationId = sc.input().migrationId as string;
    expect((await runFerry(['pause', migrationId, '--state-dir', sc.stateDir])).code).toBe(0);
    const running = startFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all']);
    await running.waitFor(/throttled: paused by the FERRY_PAUSED flag/);
    expect((await runFerry(['resume', migrationId, '--state-dir', sc.stateDir])).code).toBe(0);
    const run = await running.done;
    expect(run.code, run.stderr).toBe(0);
    expect((await tableFingerprint(sc.conn, sc.tgt, TGT)).rows).toBe('500');
  });

  it('waits for `ferry approve`, and a rejected cutover fails the execution with the cutover flags unchanged', async () => {
    sc = await scenario({ rows: 300 });
    const migrationId = sc.input().migrationId as string;
    const running = startFerry(['local', 'table-copy', '--input', sc.inputFile(), '--state-dir', sc.stateDir]);
    await running.waitFor(/waiting for approval "cutover"/);
    expect(running.stderr()).toContain(`npx ferry approve ${migrationId} --step cutover`);
    // nothing pending for cleanup yet: approving it is refused
    const early = await runFerry(['approve', migrationId, '--step', 'cleanup', '--state-dir', sc.stateDir]);
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(/no approval "cleanup" of .* is pending in .*; pending: .* --step cutover/);
    const reject = await runFerry(['approve', migrationId, '--step', 'cutover', '--reject', '--reason', 'exam week', '--state-dir', sc.stateDir]);
    expect(reject.code, reject.stderr).toBe(0);
    const run = await running.done;
    expect(run.code).toBe(1);
    expect(run.last).toMatchObject({ status: 'FAILED', error: 'ApprovalRejected', cause: expect.stringContaining('exam week') });
    expect(sc.flags()[`/ferry/${migrationId}/flags/ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`]).toBe('true');
    expect((await tableFingerprint(sc.conn, sc.src, SRC)).rows).toBe('300');

    // asked again, approved from another terminal, it finishes
    const again = startFerry(['local', 'table-copy', '--input', sc.inputFile(), '--state-dir', sc.stateDir, '--approve', 'cleanup']);
    await again.waitFor(/waiting for approval "cutover"/);
    expect((await runFerry(['approve', migrationId, '--step', 'cutover', '--state-dir', sc.stateDir])).code).toBe(0);
    const done = await again.done;
    expect(done.code, done.stderr).toBe(0);
    expect((await tableFingerprint(sc.conn, sc.src, SRC)).rows).toBe('0');
  });

  it('hands over to new executions before the history limit and still finishes', async () => {
    sc = await scenario({ rows: 3000 });
    const run = await local(sc.inputFile({ chunk: { targetMillis: 10, minRows: 50, maxRows: 50 }, execution: { maxLoopIterations: 2 }, cleanup: { mode: 'none' } }));
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/continuing as a new execution \(2\)/);
    expect(run.stderr).toMatch(/SUCCEEDED over \d+ executions/);
    expect((await tableFingerprint(sc.conn, sc.tgt, TGT)).rows).toBe('3000');
    // what the run would be billed for, summed over every execution of the chain
    const usage = /usage: (\d+) state transitions, (\d+) task invocations \(([^)]*)\), ([\d.]+) task-seconds, at most (\d+) at once, peak memory (\d+) MB/.exec(run.stderr);
    expect(usage, run.stderr).not.toBeNull();
    const byTask: Record<string, number> = Object.fromEntries(usage![3]!.split(', ').map((e) => [e.split(' ')[0], Number(e.split(' ')[1])]));
    expect(byTask.Preflight).toBe(Number(/SUCCEEDED over (\d+) executions/.exec(run.stderr)![1]));
    expect(byTask.CopyChunks).toBeGreaterThanOrEqual(1);
    expect(byTask.Sweep).toBeGreaterThanOrEqual(2);
    expect(Object.values(byTask).reduce((a, b) => a + b, 0)).toBe(Number(usage![2]));
    // every invocation is a Task state entered, and the Choices, Waits and approvals are transitions too
    expect(Number(usage![1])).toBeGreaterThan(2 * Number(usage![2]));
    expect(Number(usage![5])).toBe(1);
    expect(Number(usage![6])).toBeGreaterThan(20);
  });
});
