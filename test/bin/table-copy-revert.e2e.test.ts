import { describe, expect, it } from 'vitest';
import { runFerry, startFerry } from '../helpers/cli.ts';
import { failures, startAppWriter, type AppStatement } from '../helpers/app-writer.ts';
import { tableFingerprint } from '../helpers/db.ts';
import { scenario, SRC, TGT } from '../helpers/scenario.ts';

describe('ferry revert of a table-copy waiting for its cleanup approval', () => {
  it("carries the application's inserts, updates and deletions in the new table back to the old one, sets the cut-over flags back to their values before the cut-over (a flag not set then removed), and a run after the revert asks for the cut-over again and finishes", async () => {
    const sc = await scenario({ rows: 3000 });
    try {
      const migrationId = sc.input().migrationId as string;
      const prefix = `/ferry/${migrationId}/flags/`;
      // the cut-over also turns on a flag the copy never set
      const flags = {
        copy: { ENABLE_CSMH_EXTENDED: 'true', ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES: 'true' },
        cutover: { ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES: 'false', CSMH_ONLY: 'true' },
      };
      const input = sc.inputFile({ flags });
      const running = startFerry(['local', 'table-copy', '--input', input, '--state-dir', sc.stateDir, '--approve', 'cutover']);
      await running.waitFor(/waiting for approval "cleanup"/, 120_000);
      expect(sc.flags()).toEqual({ [`${prefix}ENABLE_CSMH_EXTENDED`]: 'true', [`${prefix}ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`]: 'false', [`${prefix}CSMH_ONLY`]: 'true' });

      // the application, reading and writing only the new table since the cut-over
      await sc.conn.query(`INSERT INTO \`${sc.tgt}\`.${TGT} (created, student_module_id, state) VALUES (NOW(6), 7, 'after the cut-over'), (NOW(6), 8, 'after the cut-over')`);
      await sc.conn.query(`UPDATE \`${sc.tgt}\`.${TGT} SET state = 'edited after the cut-over' WHERE id = 5`);
      await sc.conn.query(`DELETE FROM \`${sc.tgt}\`.${TGT} WHERE id = 7`);
      const target = await tableFingerprint(sc.conn, sc.tgt, TGT);
      expect((await tableFingerprint(sc.conn, sc.src, SRC)).rows).toBe('3000');
      expect(target.rows).toBe('3001');

      // how far the old table trails: the application's inserts since the copy flags, and its update and deletion, which the revert window logged
      const lag = /^old table: \S+ lacks the 2 rows the application inserted in \S+ since the copy flags \(ids above \d+\), and 2 rows it updated or deleted among the ids copied are named by the revert window's log \(the oldest of those writes at [0-9-]+ [0-9:]+, the writer's clock\): ferry revert compares the spans they fall in$/;
      const stats = await runFerry(['stats', '--input', input]);
      expect(stats.code, stats.stderr).toBe(0);
      expect(JSON.parse(stats.stdout).oldTable, stats.stdout).toMatch(lag);
      const status = await runFerry(['status', migrationId, '--state-dir', sc.stateDir]);
      expect(status.code, status.stderr).toBe(0);
      expect(String(JSON.parse(status.stdout).oldHome), status.stdout).toMatch(lag);

      const noReason = await runFerry(['revert', migrationId, '--state-dir', sc.stateDir]);
      expect(noReason.code, noReason.stderr).toBe(2);
      const taken = await runFerry(['revert', migrationId, '--reason', 'the new table answers slowly', '--state-dir', sc.stateDir]);
      expect(taken.code, taken.stderr).toBe(0);
      const run = await running.done;
      expect(run.code, run.stderr).toBe(0);
      expect(run.last, run.stdout).toMatchObject({ outcome: 'reverted', phase: 'reverted', reverted: { askedBy: expect.stringContaining('the new table answers slowly') } });
      expect(sc.flags(), 'the flags as they were before the cut-over').toEqual({ [`${prefix}ENABLE_CSMH_EXTENDED`]: 'true', [`${prefix}ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`]: 'true' });
      expect(await tableFingerprint(sc.conn, sc.tgt, TGT), "the new table keeps the application's rows").toEqual(target);
      expect(await tableFingerprint(sc.conn, sc.src, SRC), 'the old table holds what the new one holds').toEqual(target);
      expect(run.last).toMatchObject({ reverted: { rowsCarried: 4 } });

      // nothing is pending any more
      const again = await runFerry(['revert', migrationId, '--reason', 'again', '--state-dir', sc.stateDir]);
      expect(again.code, again.stderr).toBe(1);

      // the same input, later: the cut-over is asked for again, then the cleanup, to the end
      const retry = await runFerry(['local', 'table-copy', '--input', input, '--state-dir', sc.stateDir, '--approve', 'all']);
      expect(retry.code, retry.stderr).toBe(0);
      expect(retry.stderr).toMatch(/reverted before: the cut-over is asked for again/);
      expect(retry.last).toMatchObject({ phase: 'done', outcome: 'done' });
      expect((await tableFingerprint(sc.conn, sc.src, SRC)).rows).toBe('0');
      expect(await tableFingerprint(sc.conn, sc.tgt, TGT)).toEqual(target);
      expect(sc.flags()[`${prefix}ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`]).toBe('false');
    } finally {
      await sc.close();
    }
  }, 240_000);

  it('finishes a revert stopped after it began (phase revert in the checkpoint, the flags still the cut-over\'s) when the same command runs again, without asking for the cleanup approval again', async () => {
    const sc = await scenario({ rows: 1500 });
    try {
      const migrationId = sc.input().migrationId as string;
      const prefix = `/ferry/${migrationId}/flags/`;
      const args = ['local', 'table-copy', '--input', sc.inputFile(), '--state-dir', sc.stateDir, '--approve', 'cutover'];
      const running = startFerry(args);
      await running.waitFor(/waiting for approval "cleanup"/, 120_000);
      running.child.kill('SIGKILL');
      await running.done;
      // what a run killed right after the revert's first step leaves: the checkpoint in phase revert, the flags not yet set back
      const [rows] = await sc.conn.query(`SELECT state FROM \`${sc.tgt}\`._ferry_checkpoints WHERE migration_id = ?`, [migrationId]);
      const state = JSON.parse((rows as { state: string }[])[0]!.state);
      expect(state.flagsBefore).toEqual({ ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES: 'true' });
      state.revert = { askedBy: 'revert instead of the cleanup, asked by ops: slow', at: new Date().toISOString() };
      await sc.conn.query(`UPDATE \`${sc.tgt}\`._ferry_checkpoints SET phase = 'revert', state = ? WHERE migration_id = ?`, [JSON.stringify(state), migrationId]);
      expect(sc.flags()[`${prefix}ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`]).toBe('false');

      const second = startFerry(args);
      const asked = second.waitFor(/waiting for approval "cleanup"/, 60_000).then(() => 'asked', () => 'ended');
      expect(await Promise.race([second.done.then(() => 'ended'), asked]), `the second run asked for the cleanup approval again:\n${second.stderr()}`).toBe('ended');
      const run = await second.done;
      expect(run.code, run.stderr).toBe(0);
      expect(run.last).toMatchObject({ outcome: 'reverted', phase: 'reverted' });
      expect(sc.flags()[`${prefix}ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`]).toBe('true');
      expect((await tableFingerprint(sc.conn, sc.src, SRC)).rows).toBe('1500');
    } finally {
      await sc.close();
    }
  }, 240_000);

  it("loses none of the application's writes: after the revert, what it reads from both tables (the new table's row where both have one) is everything it wrote, before and after the cut-over; none of its writes failed", async () => {
    const sc = await scenario({ rows: 3000 });
    try {
      const src = `\`${sc.src}\`.${SRC}`;
      const tgt = `\`${sc.tgt}\`.${TGT}`;
      const prefix = `/ferry/${sc.input().migrationId}/flags/`;
      const ref = `\`${sc.src}\`.reference`;
      await sc.conn.query(`CREATE TABLE ${ref} LIKE ${tgt}; INSERT INTO ${ref} SELECT * FROM ${src}`);
      // the application: into the old table until it has seen the copy flags, then into the new one, where after the cut-over it
      // also updates rows, its own and ones copied from the old table (an append-only history table's rows are not deleted)
      const writesNew = () => sc.flags()[`${prefix}ENABLE_CSMH_EXTENDED`] === 'true';
      const cutOver = () => sc.flags()[`${prefix}ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`] === 'false';
      const app = startAppWriter((i): AppStatement => {
        if (!writesNew()) return { op: 'insert-old', sql: `INSERT INTO ${src} (created, state, student_module_id) VALUES ('2025-01-01', 'app', ?)`, params: [i] };
        if (cutOver() && i % 2 === 1) return { op: 'update-new', sql: `UPDATE ${tgt} SET grade = ? WHERE id = ?`, params: [i, 1 + ((i * 7) % 3000)] };
        return { op: 'insert-new', sql: `INSERT INTO ${tgt} (created, state, student_module_id) VALUES ('2025-01-01', 'app-new', ?)`, params: [i] };
      }, { pauseMillis: 3 });
      const running = startFerry(['local', 'table-copy', '--input', sc.inputFile(), '--state-dir', sc.stateDir, '--approve', 'cutover']);
      await running.waitFor(/waiting for approval "cleanup"/, 120_000);
      await new Promise((r) => setTimeout(r, 1000));
      const askedAt = Date.now();
      const taken = await runFerry(['revert', sc.input().migrationId as string, '--reason', 'slow reads', '--state-dir', sc.stateDir]);
      expect(taken.code, taken.stderr).toBe(0);
      const run = await running.done;
      expect(run.code, run.stderr).toBe(0);
      expect(run.last).toMatchObject({ outcome: 'reverted' });
      await new Promise((r) => setTimeout(r, 500));
      const ops = await app.stop();
      expect(failures(ops)).toEqual([]);
      for (const op of ['insert-old', 'insert-new', 'update-new']) expect(ops.filter((o) => o.op === op).length, op).toBeGreaterThan(10);

      for (const o of ops) {
        if (o.op.startsWith('insert')) await sc.conn.query(`INSERT INTO ${ref} (id, created, state, student_module_id) VALUES (?, '2025-01-01', ?, ?)`, [o.insertId, o.op === 'insert-old' ? 'app' : 'app-new', o.params[0]]);
        else await sc.conn.query(`UPDATE ${ref} SET grade = ? WHERE id = ?`, o.params as unknown[]);
      }
      // what the application reads with both tables' flags on
      await sc.conn.query(`CREATE TABLE \`${sc.src}\`.read_both LIKE ${tgt}; INSERT INTO \`${sc.src}\`.read_both SELECT * FROM ${tgt};
        INSERT INTO \`${sc.src}\`.read_both SELECT o.* FROM ${src} o WHERE NOT EXISTS (SELECT 1 FROM ${tgt} n WHERE n.id = o.id)`);
      expect(await tableFingerprint(sc.conn, sc.src, 'read_both')).toEqual(await tableFingerprint(sc.conn, sc.src, 'reference'));

      // the old table on its own: every row the application wrote before the revert was asked for is there as it wrote it last
      // (rows it wrote after are in the new table only, which it still reads and writes)
      const late = [...new Set(ops.filter((o) => o.startedAt >= askedAt).map((o) => String(o.op.startsWith('insert') ? o.insertId : o.params[1])))];
      expect(late.length).toBeGreaterThan(0);
      const without = (table: string) => `CREATE TABLE \`${sc.src}\`.${table}_before LIKE ${tgt}; INSERT INTO \`${sc.src}\`.${table}_before SELECT * FROM \`${sc.src}\`.${table} WHERE id NOT IN (${late.join(', ')})`;
      await sc.conn.query(`${without(SRC)}; ${without('reference')}`);
      const before = await tableFingerprint(sc.conn, sc.src, 'reference_before');
      expect(Number(before.rows)).toBeGreaterThan(3000);
      expect(await tableFingerprint(sc.conn, sc.src, `${SRC}_before`)).toEqual(before);
    } finally {
      await sc.close();
    }
  }, 240_000);
  it("refuses a revert the old table cannot take (an id past its column's type), naming the row, with no flag changed and the cleanup approval asked again; reverts once the row is gone", async () => {
    const sc = await scenario({ rows: 1500 });
    try {
      const migrationId = sc.input().migrationId as string;
      const prefix = `/ferry/${migrationId}/flags/`;
      const tgt = `\`${sc.tgt}\`.${TGT}`;
      const running = startFerry(['local', 'table-copy', '--input', sc.inputFile(), '--state-dir', sc.stateDir, '--approve', 'cutover']);
      await running.waitFor(/waiting for approval "cleanup"/, 120_000);
      const cutOver = sc.flags();
      await sc.conn.query(`UPDATE ${tgt} SET state = 'edited after the cut-over' WHERE id = 5`);
      await sc.conn.query(`INSERT INTO ${tgt} (created, student_module_id, state) VALUES (NOW(6), 10, 'fits')`);
      await sc.conn.query(`INSERT INTO ${tgt} (id, created, student_module_id, state) VALUES (3000000000, NOW(6), 9, 'past the old id type')`);

      const taken = await runFerry(['revert', migrationId, '--reason', 'try', '--state-dir', sc.stateDir]);
      expect(taken.code, taken.stderr).toBe(0);
      await running.waitFor(/revert refused: .*: id 3000000000: Out of range value for column 'id'[^;]*\. No flag was changed/, 60_000);
      await running.waitFor(/revert refused[\s\S]*waiting for approval "cleanup"/, 60_000);
      expect(sc.flags(), 'no flag changed').toEqual(cutOver);
      const [rows] = await sc.conn.query(`SELECT phase FROM \`${sc.tgt}\`._ferry_checkpoints WHERE migration_id = ?`, [migrationId]);
      expect((rows as { phase: string }[])[0]!.phase).toBe('cleanup-approval');
      // what was carried before the refusal: the update (its span comes first)
      const [five] = await sc.conn.query(`SELECT state FROM \`${sc.src}\`.${SRC} WHERE id = 5`);
      expect((five as { state: string }[])[0]!.state).toBe('edited after the cut-over');

      await sc.conn.query(`DELETE FROM ${tgt} WHERE id = 3000000000`);
      const again = await runFerry(['revert', migrationId, '--reason', 'the row is gone', '--state-dir', sc.stateDir]);
      expect(again.code, again.stderr).toBe(0);
      const run = await running.done;
      expect(run.code, run.stderr).toBe(0);
      expect(run.last).toMatchObject({ outcome: 'reverted', reverted: { askedBy: expect.stringContaining('the row is gone') } });
      expect(sc.flags()[`${prefix}ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`]).toBe('true');
      expect(await tableFingerprint(sc.conn, sc.src, SRC)).toEqual(await tableFingerprint(sc.conn, sc.tgt, TGT));
    } finally {
      await sc.close();
    }
  }, 240_000);

  it('finishes a revert killed (SIGKILL) half-way through carrying the new table back, when the same command runs again', async () => {
    const sc = await scenario({ rows: 1500 });
    try {
      const migrationId = sc.input().migrationId as string;
      const prefix = `/ferry/${migrationId}/flags/`;
      const src = `\`${sc.src}\`.${SRC}`;
      const tgt = `\`${sc.tgt}\`.${TGT}`;
      // holds the run once the revert has carried some of the application's rows: a moment to kill it in
      const held = sc.inputFile({ throttle: { waitSeconds: 1, query: `SELECT COUNT(*) FROM ${src} WHERE state = 'app-new'` } });
      const first = startFerry(['local', 'table-copy', '--input', held, '--state-dir', sc.stateDir, '--approve', 'cutover']);
      await first.waitFor(/waiting for approval "cleanup"/, 120_000);
      await sc.conn.query(`INSERT INTO ${tgt} (created, student_module_id, state) SELECT NOW(6), id, 'app-new' FROM ${tgt} WHERE id <= 1500`);
      await sc.conn.query(`UPDATE ${tgt} SET grade = 9 WHERE id IN (3, 1400); DELETE FROM ${tgt} WHERE id = 700`);
      const taken = await runFerry(['revert', migrationId, '--reason', 'slow', '--state-dir', sc.stateDir]);
      expect(taken.code, taken.stderr).toBe(0);
      await first.waitFor(/throttled/, 60_000);
      first.child.kill('SIGKILL');
      await first.done;
      const [carried] = await sc.conn.query(`SELECT COUNT(*) AS n FROM ${src} WHERE state = 'app-new'`);
      const n = Number((carried as { n: string }[])[0]!.n);
      expect(n, 'killed half-way').toBeGreaterThan(0);
      expect(n).toBeLessThan(1500);
      expect(sc.flags()[`${prefix}ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`], 'the flags not set back yet').toBe('false');

      const second = startFerry(['local', 'table-copy', '--input', sc.inputFile(), '--state-dir', sc.stateDir, '--approve', 'cutover']);
      const asked = second.waitFor(/waiting for approval "cleanup"/, 60_000).then(() => 'asked', () => 'ended');
      expect(await Promise.race([second.done.then(() => 'ended'), asked]), second.stderr()).toBe('ended');
      const run = await second.done;
      expect(run.code, run.stderr).toBe(0);
      expect(run.last).toMatchObject({ outcome: 'reverted', phase: 'reverted' });
      expect(sc.flags()[`${prefix}ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`]).toBe('true');
      const old = await tableFingerprint(sc.conn, sc.src, SRC);
      expect(old.rows).toBe('2999');
      expect(old).toEqual(await tableFingerprint(sc.conn, sc.tgt, TGT));
    } finally {
      await sc.close();
    }
  }, 240_000);
  it('a revert stopped after it wrote a piece of the application\'s rows to the old table, before it recorded it, finishes when run again, even after the application changed those rows meanwhile', async () => {
    const sc = await scenario({ rows: 1500 });
    try {
      const migrationId = sc.input().migrationId as string;
      const [src, tgt] = [`\`${sc.src}\`.${SRC}`, `\`${sc.tgt}\`.${TGT}`];
      const args = ['local', 'table-copy', '--input', sc.inputFile(), '--state-dir', sc.stateDir, '--approve', 'cutover'];
      const first = startFerry(args);
      await first.waitFor(/waiting for approval "cleanup"/, 120_000);
      first.child.kill('SIGKILL');
      await first.done;
      await sc.conn.query(`INSERT INTO ${tgt} (created, student_module_id, state) SELECT NOW(6), id, 'app-new' FROM ${tgt} WHERE id <= 1200`);
      // what a run killed there leaves: the piece's rows in the old table, the piece noted in the checkpoint, not in the ledger
      const [[top], [max]] = [(await sc.conn.query(`SELECT CAST(MAX(hi) AS CHAR) AS v FROM \`${sc.tgt}\`._ferry_ledger`))[0] as { v: string }[], (await sc.conn.query(`SELECT CAST(MAX(id) AS CHAR) AS v FROM ${tgt}`))[0] as { v: string }[]];
      const [piece] = (await sc.conn.query(`SELECT CAST(id AS CHAR) AS v FROM ${tgt} WHERE id > ? ORDER BY id LIMIT 999, 1`, [top!.v]))[0] as { v: string }[];
      await sc.conn.query(`INSERT INTO ${src} SELECT * FROM ${tgt} WHERE id > ? AND id <= ?`, [top!.v, piece!.v]);
      const [rows] = await sc.conn.query(`SELECT state FROM \`${sc.tgt}\`._ferry_checkpoints WHERE migration_id = ?`, [migrationId]);
      const state = JSON.parse((rows as { state: string }[])[0]!.state);
      state.revert = { askedBy: 'ops: slow', at: new Date().toISOString(), spansDone: true, aboveUpTo: max!.v, aboveAfter: top!.v, abovePiece: piece!.v };
      await sc.conn.query(`UPDATE \`${sc.tgt}\`._ferry_checkpoints SET phase = 'revert', state = ? WHERE migration_id = ?`, [JSON.stringify(state), migrationId]);
      // meanwhile the application changed two of those rows and deleted one
      await sc.conn.query(`UPDATE ${tgt} SET state = 'changed meanwhile' WHERE id IN (?, ?); DELETE FROM ${tgt} WHERE id = ?`, [piece!.v, BigInt(piece!.v) - 10n, BigInt(piece!.v) - 20n]);

      const second = await runFerry(args);
      expect(second.code, second.stderr).toBe(0);
      expect(second.last).toMatchObject({ outcome: 'reverted' });
      expect(await tableFingerprint(sc.conn, sc.src, SRC)).toEqual(await tableFingerprint(sc.conn, sc.tgt, TGT));
    } finally {
      await sc.close();
    }
  }, 240_000);
});
