import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runFerry, startFerry } from '../helpers/cli.ts';
import { admin, tableFingerprint } from '../helpers/db.ts';
import { scenario, SRC, TGT, type Scenario } from '../helpers/scenario.ts';

/** `ferry set`: live knobs, taken in by a running migration before its next chunk. */
describe('ferry set (live knobs)', () => {
  let sc: Scenario | undefined;
  afterEach(async () => {
    await sc?.close();
    sc = undefined;
  });

  const knobsFile = () => join(sc!.stateDir, 'knobs.json');

  it('changes the chunk size and the thread limit of a running copy, and the copy follows', async () => {
    sc = await scenario({ rows: 60_000 });
    const migrationId = sc.input().migrationId as string;
    const file = sc.inputFile({ chunk: { minRows: 100, maxRows: 100 }, throttle: { waitSeconds: 1 }, cleanup: { mode: 'none' } });
    const running = startFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all']);
    await running.waitFor(/\[copy\].*copied ids \d+\.\.\d+ \(100 rows/);

    // Someone else's long query keeps a second thread running: with a limit of 1 the copy waits.
    const busy = await admin();
    const sleeping = busy.query('SELECT SLEEP(600)').catch(() => undefined);
    try {
      const set = await runFerry(['set', migrationId, 'throttle.maxThreadsRunning=1', '--state-dir', sc.stateDir]);
      expect(set.code, set.stderr).toBe(0);
      expect(JSON.parse(set.stdout)).toEqual({ 'throttle.maxThreadsRunning': '1' });
      await running.waitFor(/throttled: Threads_running \d+ > 1 on edxapp.*\[knobs throttle\.maxThreadsRunning=1\]/);

      // Still held; bigger chunks and the limit lifted, in one command.
      const again = await runFerry(['set', migrationId, 'chunk.minRows=300', 'chunk.maxRows=300', 'throttle.maxThreadsRunning=200', '--state-dir', sc.stateDir]);
      expect(again.code, again.stderr).toBe(0);
      await running.waitFor(/copied ids \d+\.\.\d+ \(300 rows.*\[knobs chunk\.maxRows=300 chunk\.minRows=300 throttle\.maxThreadsRunning=200\]/);
    } finally {
      await busy.destroy();
      await sleeping;
    }
    const run = await running.done;
    expect(run.code, run.stderr).toBe(0);
    expect(await tableFingerprint(sc.conn, sc.tgt, TGT)).toEqual(await tableFingerprint(sc.conn, sc.src, SRC));
    // no chunk after the change was the old size, none before it the new one
    const sizes = [...run.stderr.matchAll(/\[copy\].*\((\d+) rows in/g)].map((m) => Number(m[1]));
    const firstBig = sizes.indexOf(300);
    expect(firstBig).toBeGreaterThan(0);
    expect(sizes.slice(0, firstBig).every((n) => n === 100)).toBe(true);
    expect(sizes.slice(firstBig).every((n) => n <= 300)).toBe(true);
  });

  it('refuses a bad knob with exit 2 and writes nothing; one written by hand is ignored with a warning', async () => {
    sc = await scenario({ rows: 500 });
    const migrationId = sc.input().migrationId as string;
    const file = sc.inputFile({ cleanup: { mode: 'none' }, chunk: { maxRows: 200 } });
    const set = (...words: string[]) => runFerry(['set', migrationId, ...words, '--state-dir', sc!.stateDir]);

    for (const [words, message] of [
      [['chunk.maxRows=0'], /chunk\.maxRows: at least 1 row/],
      [['chunk.targetMillis=fast'], /chunk\.targetMillis: must be a whole number/],
      [['chunk.rows=10'], /chunk\.rows: not a knob; the knobs are chunk\.targetMillis, /],
      [['maxRows'], /write a knob as NAME=VALUE/],
      // the caps the deployment sets (here the local defaults): a knob above one would switch a protection off
      [['throttle.maxThreadsRunning=201'], /throttle\.maxThreadsRunning: at most 200, the cap on throttle\.maxThreadsRunning \(set by caps\.throttle\.maxThreadsRunning in the stack's config on AWS, by FERRY_CAP_THROTTLE_MAX_THREADS_RUNNING locally; default 200\)/],
      [['chunk.maxRows=300', 'cleanup.batchRows=50001'], /cleanup\.batchRows: at most 50000, the cap on cleanup\.batchRows/],
    ] as const) {
      const r = await set(...words);
      expect(r.code, `${words}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    expect(() => readFileSync(knobsFile())).toThrow(/ENOENT/);

    // A first run records the input in the state dir; from then on knobs are checked against it too.
    const first = await runFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all']);
    expect(first.code, first.stderr).toBe(0);
    const wrongMachine = await set('page.docs=10');
    expect(wrongMachine.code).toBe(2);
    expect(wrongMachine.stderr).toMatch(/page\.docs: this migration's input has no page\.docs/);
    const crossed = await set('chunk.minRows=5000');
    expect(crossed.code).toBe(2);
    expect(crossed.stderr).toMatch(/chunk\.minRows: chunk\.minRows minRows must not exceed maxRows/);
    expect(() => readFileSync(knobsFile())).toThrow(/ENOENT/);

    // Written some other way (by hand, or straight into SSM), a bad value is ignored, and the run says so.
    writeFileSync(knobsFile(), JSON.stringify({ [`/ferry/${migrationId}/knobs/chunk.maxRows`]: '0', [`/ferry/${migrationId}/knobs/throttle.waitSeconds`]: '2' }));
    await sc.conn.query(`TRUNCATE \`${sc.tgt}\`.${TGT}`);
    await sc.conn.query(`DELETE FROM \`${sc.tgt}\`._ferry_checkpoints`);
    await sc.conn.query(`DELETE FROM \`${sc.tgt}\`._ferry_ledger`);
    const run = await runFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/warning: knob ignored: chunk\.maxRows=0: at least 1 row/);
    expect(run.stderr).toMatch(/\[knobs throttle\.waitSeconds=2\]/);
    expect((await tableFingerprint(sc.conn, sc.tgt, TGT)).rows).toBe('500');

    // NAME= takes a knob back
    const back = await set('chunk.maxRows=', 'throttle.waitSeconds=');
    expect(back.code, back.stderr).toBe(0);
    expect(JSON.parse(back.stdout)).toEqual({});
  });

  it('refuses an input over a cap with exit 2 and writes nothing; the environment may raise the cap locally', async () => {
    sc = await scenario({ rows: 100 });
    const file = sc.inputFile({ throttle: { maxThreadsRunning: 5000, waitSeconds: 1 }, cleanup: { mode: 'trickle-delete', batchRows: 700 } });
    const refused = await runFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all']);
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toMatch(/throttle\.maxThreadsRunning: at most 200, the cap on throttle\.maxThreadsRunning \(set by caps\.throttle\.maxThreadsRunning in the stack's config on AWS, by FERRY_CAP_THROTTLE_MAX_THREADS_RUNNING locally/);
    const [tables] = await sc.conn.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = ?`, [sc.tgt]);
    expect((tables as { table_name?: string; TABLE_NAME?: string }[]).map((t) => t.table_name ?? t.TABLE_NAME)).toEqual([TGT]);
    expect((await tableFingerprint(sc.conn, sc.tgt, TGT)).rows).toBe('0');
    expect(sc.flags()).toEqual({});

    const raised = await runFerry(['plan', 'table-copy', '--input', file, '--state-dir', sc.stateDir], { FERRY_CAP_THROTTLE_MAX_THREADS_RUNNING: '5000' });
    expect(raised.code, raised.stderr).toBe(0);
  });
});
