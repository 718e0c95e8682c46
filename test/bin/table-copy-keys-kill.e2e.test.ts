import { randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { failures, startAppWriter, type AppStatement } from '../helpers/app-writer.ts';
import { runFerry, startFerry } from '../helpers/cli.ts';
import { MYSQL_URL, OTHER_HOST_URL } from '../helpers/db.ts';
import { contents, keyTables, lineOf, SHAPES, upToCleanup } from '../helpers/key-tables.ts';

/** table-copy of a table keyed by anything else than one integer column (see table-copy-keys.e2e.test.ts), killed and run again. */
describe('ferry local table-copy of a table keyed by a composite, string or binary key, killed', () => {
  const setUp = keyTables();

  it('survives SIGKILLs at any moment (two servers, the copy in 2 partitions): each run resumes from the checkpoint, and no row is lost', async () => {
    const shape = SHAPES['CHAR(36) UUID']!;
    const t = await setUp(shape, 20000);
    const env = { FERRY_MYSQL_EDXAPP: MYSQL_URL, FERRY_MYSQL_CSMH: OTHER_HOST_URL };
    const file = t.input({ chunk: { targetMillis: 20, minRows: 50, maxRows: 150 }, partitions: 2 });
    const src = `\`${t.src}\`.t`;
    const phaseNow = async () => {
      const [rows] = await t.conn.query(`SELECT phase FROM \`${t.tgt}\`._ferry_checkpoints`).catch(() => [[]] as never);
      return (rows as { phase: string }[])[0]?.phase ?? null;
    };
    let phase: string | null = null;
    let cleanupSeenAt: number | null = null;
    const watching = setInterval(() => {
      void phaseNow().then((p) => {
        phase = p;
        if (p === 'cleanup' && cleanupSeenAt === null) cleanupSeenAt = Date.now();
      });
    }, 30);
    // a server writing the old table, with keys anywhere, while the copy runs (rows land in ranges already copied) and for
    // two seconds of the cleanup (after the cut-over: late rows), through the kills
    const writer = startAppWriter((i): AppStatement | null => {
      if (phase !== 'copy' && !(cleanupSeenAt !== null && Date.now() - cleanupSeenAt < 2000)) return null;
      return { op: 'insert-old', sql: `INSERT INTO ${src} (id, v, n) VALUES (?, ?, ?)`, params: [...shape.fresh(), `old-${i}`, i] };
    }, { pauseMillis: 20 });
    // one run killed in each of these phases, at a random moment of it
    const killedIn: string[] = [];
    for (const target of ['copy', 'catch-up', 'verify', 'sweep', 'cleanup', 'cleanup']) {
      const run = startFerry(['local', 'table-copy', '--input', file, '--state-dir', t.stateDir, '--approve', 'all'], env);
      const order = ['prepare', 'copy', 'catch-up', 'verify', 'cutover-approval', 'sweep', 'cleanup-approval', 'cleanup', 'done'];
      while (run.child.exitCode === null && order.indexOf((await phaseNow()) ?? 'prepare') < order.indexOf(target)) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, randomInt(0, 600)));
      if (run.child.exitCode !== null) break;
      killedIn.push((await phaseNow())!);
      run.child.kill('SIGKILL');
      expect((await run.done).signal).toBe('SIGKILL');
    }
    clearInterval(watching);
    const ops = await writer.stop();
    for (const o of ops) {
      const [id, v, n] = o.params as [string, string, number];
      if (!o.error) t.expected.set(id, lineOf([id], v, n));
    }
    const last = await runFerry(['local', 'table-copy', '--input', file, '--state-dir', t.stateDir, '--approve', 'all'], env);
    expect(last.code, last.stderr.slice(-3000)).toBe(0);
    expect(new Set(killedIn).size, `killed in ${killedIn.join(', ')}`).toBeGreaterThanOrEqual(3);
    expect(ops.filter((o) => o.op === 'insert-old').length).toBeGreaterThan(20);
    expect(failures(ops)).toEqual([]);
    const target = await contents(t.conn, t.tgt, shape);
    const want = [...t.expected.values()].sort();
    expect({ missing: want.filter((r) => !target.includes(r)).slice(0, 5), extra: target.filter((r) => !want.includes(r)).slice(0, 5), rows: target.length }).toEqual({ missing: [], extra: [], rows: want.length });
    expect(await contents(t.conn, t.src, shape)).toEqual([]);
  }, 400_000);

  it('a run stopped after it deleted a span from the old table, before it recorded so, resumes and delivers a row written there since', async () => {
    const { shape, t, file, run, row } = await upToCleanup(setUp);
    run.child.kill('SIGKILL');
    await run.done;
    // What a SIGKILL between the delete's commit and the span's record leaves: the span marked as being deleted, its rows gone.
    const [[span]] = (await t.conn.query(`SELECT seq, lo, hi FROM \`${t.tgt}\`._ferry_key_ledger ORDER BY seq LIMIT 1`)) as unknown as [{ seq: number; lo: string | null; hi: string }[]];
    const [hiName, hiSeq] = JSON.parse(span!.hi) as [string, string];
    await t.conn.query(`UPDATE \`${t.tgt}\`._ferry_key_ledger SET deleting = 1 WHERE seq = ?`, [span!.seq]);
    const [gone] = await t.conn.query(`DELETE FROM \`${t.src}\`.t WHERE (name, seq) <= (?, ?)`, [hiName, Number(hiSeq)]);
    expect((gone as { affectedRows: number }).affectedRows).toBeGreaterThan(5);
    await t.conn.query(`INSERT INTO \`${t.src}\`.t (name, seq, v, n) VALUES (?, 1000, 'late', 0)`, [row.name]);
    const again = await runFerry(['local', 'table-copy', '--input', file, '--state-dir', t.stateDir, '--approve', 'all']);
    expect(again.code, again.stderr.slice(-2000)).toBe(0);
    expect((await contents(t.conn, t.tgt, shape)).filter((r) => r.startsWith(`${row.name}|1000|`))).toEqual([`${row.name}|1000|late|0`]);
    expect(await contents(t.conn, t.src, shape)).toEqual([]);
  }, 300_000);
});
