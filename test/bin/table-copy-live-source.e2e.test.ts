import { afterEach, describe, expect, it } from 'vitest';
import { runFerry, startFerry, writeJson } from '../helpers/cli.ts';
import { tableFingerprint } from '../helpers/db.ts';
import { scenario, SRC, TGT, type Scenario } from '../helpers/scenario.ts';

/** Local runs of table-copy (as table-copy.e2e.test.ts) while the application still writes the old table. */
describe('ferry local table-copy of a table the application still writes', () => {
  let sc: Scenario | undefined;
  afterEach(async () => {
    await sc?.close();
    sc = undefined;
  });

  const local = (file: string, extra: string[] = ['--approve', 'all'], env: NodeJS.ProcessEnv = {}) =>
    runFerry(['local', 'table-copy', '--input', file, '--state-dir', sc!.stateDir, ...extra], env);

  it('copies rows inserted into the source while it runs, and truncates only after they are all in', async () => {
    sc = await scenario({ rows: 20000, stateBytes: 300 });
    const s = sc;
    const runP = local(s.inputFile({ cleanup: { mode: 'truncate' }, catchUp: { quietSeconds: 3, pollSeconds: 1 } }));
    let inserted = 0;
    const writer = (async () => {
      // the application keeps writing the old table for a while (about 2.5 s)
      for (let i = 0; i < 25; i++) {
        await s.conn.query(`INSERT INTO \`${s.src}\`.${SRC} (created, state, student_module_id) VALUES (NOW(6), 'late', ?), (NOW(6), NULL, ?)`, [i, i]);
        inserted += 2;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    await writer;
    const run = await runP;
    expect(run.code, run.stderr).toBe(0);
    expect(inserted).toBe(50);
    const target = await tableFingerprint(s.conn, s.tgt, TGT);
    expect(target.rows).toBe('20050');
    const [late] = await s.conn.query(`SELECT COUNT(*) AS n FROM \`${s.tgt}\`.${TGT} WHERE state = 'late'`);
    expect(String((late as { n: string }[])[0]!.n)).toBe('25');
    expect((await tableFingerprint(s.conn, s.src, SRC)).rows).toBe('0');
    expect(run.last).toMatchObject({ cleanup: 'truncate', rowsDeleted: '20050' });
  });

  it('a catch-up that does not get quiet says how many rows still arrive and what to check, and ends once they stop', async () => {
    sc = await scenario({ rows: 3000 });
    const s = sc;
    const runP = startFerry(['local', 'table-copy', '--input', s.inputFile({ cleanup: { mode: 'none' }, catchUp: { quietSeconds: 2, pollSeconds: 1 } }), '--state-dir', s.stateDir, '--approve', 'all']);
    // an application server that never picked up the copy flags keeps writing the old table
    let writing = true;
    const writer = (async () => {
      while (writing) {
        await s.conn.query(`INSERT INTO \`${s.src}\`.${SRC} (created, state, student_module_id) VALUES (NOW(6), 'late', 1)`);
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    await runP.waitFor(/the old table still receives rows: \d+ in the last 2\d s, and the catch-up has waited \d+ s for 2 s without one\. It ends only once the application writes the new table: is every server honouring the copy flags \(ENABLE_CSMH_EXTENDED=true, ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES=true\)\? ferry flags t-\w+ shows them/, 60_000);
    writing = false;
    await writer;
    const run = await runP.done;
    expect(run.code, run.stderr).toBe(0);
    expect(await tableFingerprint(s.conn, s.tgt, TGT)).toEqual(await tableFingerprint(s.conn, s.src, SRC));
  });

  it('chooses idOffset from the insert rate it measures when the input leaves it out, and says so', async () => {
    sc = await scenario({ rows: 1000 });
    const s = sc;
    const input = s.input({ cleanup: { mode: 'none' } });
    delete input.idOffset;
    let writing = true;
    const writer = (async () => {
      // about 40 rows a second: 144,000 an hour, 3.5 million a day
      while (writing) {
        await s.conn.query(`INSERT INTO \`${s.src}\`.${SRC} (created, student_module_id) VALUES (NOW(6), 1), (NOW(6), 2)`);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const running = startFerry(['local', 'table-copy', '--input', writeJson(s.dir, 'auto-offset.json', input), '--state-dir', s.stateDir, '--approve', 'all']);
    await running.waitFor(/idOffset \d+ chosen/, 30_000);
    writing = false;
    await writer;
    const run = await running.done;
    expect(run.code, run.stderr).toBe(0);
    const offset = BigInt(run.last!.idOffset as string);
    const perHour = BigInt(run.last!.sourceInsertsPerHour as string);
    expect(perHour).toBeGreaterThan(50_000n);
    expect(perHour).toBeLessThan(200_000n);
    // a day of the measured rate (rounded up), above the floor of a million ids
    expect(offset).toBeGreaterThanOrEqual(perHour * 24n);
    expect(offset).toBeLessThanOrEqual(perHour * 24n + 24n);
    expect(offset).toBeGreaterThan(1_000_000n);
    expect(BigInt(run.last!.targetAutoIncrement as string)).toBeGreaterThan(offset + 1000n);
    expect(run.stderr).toMatch(new RegExp(`idOffset ${offset} chosen: the source receives about ${perHour} rows an hour`));
  });
});
