import { afterEach, describe, expect, it } from 'vitest';
import { runFerry, startFerry } from '../helpers/cli.ts';
import { MYSQL_URL, OTHER_HOST_URL, tableFingerprint } from '../helpers/db.ts';
import { scenario, SRC, TGT, type Scenario } from '../helpers/scenario.ts';

/** table-copy's initial copy split into partitions copied at once by the ASL's Map state. */
describe('ferry local table-copy with partitions', () => {
  let sc: Scenario | undefined;
  afterEach(async () => {
    await sc?.close();
    sc = undefined;
  });
  const local = (file: string, env: NodeJS.ProcessEnv = {}) => runFerry(['local', 'table-copy', '--input', file, '--state-dir', sc!.stateDir, '--approve', 'all'], env);
  const partitionRows = async (s: Scenario) => {
    const [rows] = await s.conn.query(`SELECT part, CAST(lo AS CHAR) AS lo, CAST(hi AS CHAR) AS hi, done, state FROM \`${s.tgt}\`._ferry_partitions ORDER BY part`).catch(() => [[]]);
    return (rows as { part: number; lo: string; hi: string; done: number; state: string }[]).map((r) => ({ ...r, state: JSON.parse(r.state) as { rowsCopied: string; verifiedUpTo: string | null } }));
  };

  it('copies three partitions at once between two servers while the application writes, and ends equal, verified, each row counted once', async () => {
    sc = await scenario({ rows: 12000, first: 5n, step: 3n, stateBytes: 100 });
    const s = sc;
    const runP = local(s.inputFile({ partitions: 3, chunk: { targetMillis: 20, minRows: 100, maxRows: 400 }, catchUp: { quietSeconds: 2, pollSeconds: 1 }, cleanup: { mode: 'none' }, idOffset: '1000' }), { FERRY_MYSQL_EDXAPP: MYSQL_URL, FERRY_MYSQL_CSMH: OTHER_HOST_URL });
    for (let i = 0; i < 20; i++) {
      await s.conn.query(`INSERT INTO \`${s.src}\`.${SRC} (created, state, student_module_id) VALUES (NOW(6), 'late', ?)`, [i]);
      await new Promise((r) => setTimeout(r, 50));
    }
    const run = await runP;
    expect(run.code, run.stderr).toBe(0);
    const source = await tableFingerprint(s.conn, s.src, SRC);
    expect(source.rows).toBe('12020');
    expect(await tableFingerprint(s.conn, s.tgt, TGT)).toEqual(source);
    expect(run.last, run.stderr).toMatchObject({ phase: 'done', rowsCopied: '12020', rangesRepaired: 0 });
    expect(run.last!.rowsVerified).toBe('12020');
    // three chunk loops, each over its own ids, ran side by side
    const usage = /usage: \d+ state transitions, \d+ task invocations \(([^)]*)\), [\d.]+ task-seconds, at most (\d+) at once/.exec(run.stderr);
    expect(usage, run.stderr).not.toBeNull();
    const byTask = Object.fromEntries(usage![1]!.split(', ').map((e) => [e.split(' ')[0], Number(e.split(' ')[1])]));
    expect(byTask.CopyPartition).toBeGreaterThanOrEqual(3);
    expect(byTask.PlanPartitions).toBe(1);
    expect(byTask.CopyChunks).toBeUndefined();
    expect(Number(usage![2])).toBe(3);
    // added up into the checkpoint, the partitions' rows are gone
    expect(await partitionRows(s)).toEqual([]);
  });

  it('resumes every partition from its own checkpoint row after SIGKILL, and a changed partition count only changes how many copy at once', async () => {
    sc = await scenario({ rows: 60000, stateBytes: 300 });
    const before = await tableFingerprint(sc.conn, sc.src, SRC);
    const input = { partitions: 2, chunk: { targetMillis: 50, minRows: 50, maxRows: 300 }, cleanup: { mode: 'none' }, idOffset: '1000', catchUp: { quietSeconds: 1 } };
    const first = startFerry(['local', 'table-copy', '--input', sc.inputFile(input), '--state-dir', sc.stateDir, '--approve', 'all']);
    let atKill: Awaited<ReturnType<typeof partitionRows>> = [];
    for (;;) {
      atKill = await partitionRows(sc);
      if (atKill.length === 2 && atKill.every((p) => BigInt(p.state.rowsCopied) > 3000n)) break;
      expect(first.child.exitCode, first.stderr()).toBeNull();
      await new Promise((r) => setTimeout(r, 5));
    }
    first.child.kill('SIGKILL');
    expect((await first.done).signal).toBe('SIGKILL');
    atKill = await partitionRows(sc);
    expect(atKill.map((p) => p.done)).toEqual([0, 0]);
    expect(atKill[0]!.lo).toBe('1');
    expect(BigInt(atKill[1]!.lo)).toBe(BigInt(atKill[0]!.hi) + 1n);
    expect(atKill[1]!.hi).toBe(before.maxId);

    const second = await local(sc.inputFile({ ...input, partitions: 4 }));
    expect(second.code, second.stderr).toBe(0);
    expect(await tableFingerprint(sc.conn, sc.tgt, TGT)).toEqual(before);
    // the two partitions planned before the kill, copied on (no new plan), at most two at once
    const usage = /task invocations \(([^)]*)\), [\d.]+ task-seconds, at most (\d+) at once/.exec(second.stderr);
    expect(usage, second.stderr).not.toBeNull();
    expect(usage![1]).toMatch(/CopyPartition \d+/);
    expect(Number(usage![2])).toBe(2);
    expect(second.last).toMatchObject({ rowsVerified: '60000', rangesRepaired: 0 });
    // rows counted once: each partition went on after its last committed chunk
    expect(BigInt(second.last!.rowsCopied as string)).toBeLessThanOrEqual(60000n);
    expect(BigInt(second.last!.rowsCopied as string)).toBeGreaterThanOrEqual(60000n - 2n * 300n);
  });

  it('hands the partitions over to new executions before the history limit, each copying on from its row', async () => {
    sc = await scenario({ rows: 3000 });
    // throttled every other tenth of a second: each partition's loop waits often, and its iterations add up
    const throttle = { query: 'SELECT MOD(FLOOR(UNIX_TIMESTAMP(NOW(3)) * 10), 2)', waitSeconds: 1 };
    const run = await local(sc.inputFile({ partitions: 2, throttle, chunk: { targetMillis: 10, minRows: 50, maxRows: 50 }, execution: { maxLoopIterations: 4 }, cleanup: { mode: 'none' }, idOffset: '1000', catchUp: { quietSeconds: 0 } }));
    expect(run.code, run.stderr).toBe(0);
    expect(Number(/SUCCEEDED over (\d+) executions/.exec(run.stderr)?.[1])).toBeGreaterThan(1);
    // the Map ended with partitions not through, and a later execution's Map went on with them
    const byTask = Object.fromEntries(/task invocations \(([^)]*)\)/.exec(run.stderr)![1]!.split(', ').map((e) => [e.split(' ')[0], Number(e.split(' ')[1])]));
    expect(byTask.FinishPartitions, run.stderr).toBeGreaterThanOrEqual(2);
    expect(byTask.PlanPartitions).toBe(byTask.FinishPartitions);
    expect(await tableFingerprint(sc.conn, sc.tgt, TGT)).toEqual(await tableFingerprint(sc.conn, sc.src, SRC));
    expect(run.last).toMatchObject({ rowsCopied: '3000', rowsVerified: '3000' });
  });

  it('refuses a partition count out of range, naming the field, before anything is written', async () => {
    sc = await scenario({ rows: 10 });
    for (const partitions of [0, 41, 1.5]) {
      const run = await local(sc.inputFile({ partitions }));
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/partitions/);
    }
    const [tables] = await sc.conn.query(`SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME LIKE '\\_ferry%'`, [sc.tgt]);
    expect(tables).toEqual([]);
  });
});
