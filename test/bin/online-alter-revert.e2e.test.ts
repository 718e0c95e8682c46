import { describe, expect, it } from 'vitest';
import { startFerry, type CliResult, type Running } from '../helpers/cli.ts';
import { failures, replayStudentModuleWrites, startAppWriter, studentModuleWriter, type AppOp, type AppWriter } from '../helpers/app-writer.ts';
import { alterScenario, CSM, tableContent, tableSchema, type AlterScenario } from '../helpers/alter-scenario.ts';

const ROWS = 20_000;
/** The scenario's ids run to about ROWS + 1000 (a gap of 1000 in the middle); the writers update and delete among them. */
const MAX_ID = ROWS + 1000;

interface CutOver {
  readonly sc: AlterScenario;
  readonly writers: AppWriter[];
  readonly running: Running;
  readonly args: string[];
  readonly schemaBefore: string;
  /** When the cleanup approval was first seen pending: the application writes the altered table from before then. */
  readonly cutOverAt: number;
}

/**
 * An online-alter widening courseware_studentmodule's id, `--approve cutover`, with `writers`
 * application writers inserting, updating and deleting single rows (autocommit, no retry) from
 * before the run starts, through the copy, the swap, and on: up to the pending cleanup approval.
 */
async function cutOver(writerCount: number, alter = 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT'): Promise<CutOver> {
  const sc = await alterScenario(ROWS);
  const schemaBefore = await tableSchema(sc.conn, sc.db, CSM);
  const writers = Array.from({ length: writerCount }, (_, k) => startAppWriter(studentModuleWriter(sc.db, CSM, MAX_ID, k, writerCount), { pauseMillis: 3 }));
  const args = ['local', 'online-alter', '--input', sc.inputFile({ alter, cleanup: { mode: 'drop' } }), '--state-dir', sc.stateDir, '--approve', 'cutover'];
  const running = startFerry(args);
  await running.waitFor(/waiting for approval "cleanup"/, 240_000);
  expect(await sc.columnType(), 'the swap happened').toBe('bigint(20) unsigned');
  // the application goes on writing the altered table for a while before anyone reverts
  await new Promise((r) => setTimeout(r, 1500));
  return { sc, writers, running, args, schemaBefore, cutOverAt: Date.now() };
}

function revert(c: CutOver, extra: string[] = ['--reason', 'the altered table answers slowly']): Promise<CliResult> {
  return startFerry(['revert', c.sc.migrationId, ...extra, '--state-dir', c.sc.stateDir]).done;
}

function expectReverted(run: CliResult): void {
  expect(run.code, run.stderr).toBe(0);
  expect(run.last, run.stdout).toMatchObject({ outcome: 'reverted', phase: 'reverted' });
}

/**
 * The end state of a revert, once the writers stopped: the table is the original again (its
 * schema as before the run, nothing of ferry's left), and holds exactly what a reference table
 * that received every write the application made (before the swap, after it, during the revert)
 * holds; none of those writes failed, and the counter continues above every id handed out.
 */
async function expectOriginalWithEveryWrite(c: CutOver, ops: AppOp[]): Promise<void> {
  const { sc } = c;
  expect(failures(ops), "the application's writes that failed").toEqual([]);
  expect(ops.filter((o) => o.startedAt > c.cutOverAt && o.op === 'insert').length, 'the application inserted after the cut-over').toBeGreaterThan(20);
  expect(await tableSchema(sc.conn, sc.db, CSM)).toBe(c.schemaBefore);
  expect((await sc.tables()).filter((t) => t !== CSM && t !== 'reference' && t !== '_ferry_checkpoints'), "ferry's tables left").toEqual([]);
  expect(await sc.triggers(), 'triggers left').toEqual([]);
  await replayStudentModuleWrites(sc.conn, sc.db, 'reference', ops);
  const [table, reference] = [await tableContent(sc.conn, sc.db, CSM), await tableContent(sc.conn, sc.db, 'reference')];
  expect({ rows: table.rows, checksum: table.checksum }).toEqual({ rows: reference.rows, checksum: reference.checksum });
  const [ai] = await sc.conn.query('SELECT AUTO_INCREMENT AS a FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [sc.db, CSM]);
  const highest = ops.filter((o) => o.insertId).reduce((m, o) => (BigInt(o.insertId!) > m ? BigInt(o.insertId!) : m), 0n);
  expect(BigInt((ai as { a: string }[])[0]!.a) > highest, 'AUTO_INCREMENT continues above every id handed out').toBe(true);
}

async function stopWriters(c: CutOver): Promise<AppOp[]> {
  return (await Promise.all(c.writers.map((w) => w.stop()))).flat().sort((a, b) => a.startedAt - b.startedAt);
}

describe('ferry revert of an online-alter waiting for its cleanup approval', () => {
  it("refuses while a row cannot go back into the original shape, with nothing flipped; then carries every write back and swaps the original table back, failing none of the application's writes", async () => {
    const c = await cutOver(2, 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT, MODIFY student_id bigint NOT NULL');
    const { sc, running } = c;
    try {
      // a value the original `int` column cannot hold, written in the altered table after the cut-over
      const [big] = await sc.conn.query(`INSERT INTO \`${sc.db}\`.${CSM} (module_id, student_id, created, modified, course_id) VALUES ('too-big', 5000000000, '2025-01-01', '2025-01-01', 'c')`);
      const bigId = String((big as { insertId: number }).insertId);
      const refused = await revert(c);
      expect(refused.code, refused.stderr).toBe(0);
      await running.waitFor(/waiting for approval "cleanup"[\s\S]*waiting for approval "cleanup"/, 180_000);
      expect(running.stderr()).toMatch(new RegExp(`revert refused[^\\n]*\\b${bigId}\\b[^\\n]*student_id`));
      expect(await sc.columnType(), 'nothing was flipped').toBe('bigint(20) unsigned');
      expect(await sc.triggers(), 'the revert took its triggers back').toEqual([]);
      expect(running.child.exitCode).toBeNull();

      await sc.conn.query(`DELETE FROM \`${sc.db}\`.${CSM} WHERE id = ?`, [bigId]);
      const taken = await revert(c);
      expect(taken.code, taken.stderr).toBe(0);
      const run = await running.done;
      expectReverted(run);
      expect(run.stderr).toMatch(/reverting/);
      // the application writes the original table again for a while
      await new Promise((r) => setTimeout(r, 1000));
      await expectOriginalWithEveryWrite(c, await stopWriters(c));
    } finally {
      running.child.kill('SIGKILL');
      await Promise.all(c.writers.map((w) => w.stop()));
      await sc.close();
    }
  }, 420_000);

  it('finishes a revert killed (SIGKILL) while it compares the tables when the same command runs again; then the same input alters the table again, to the end', async () => {
    const c = await cutOver(1);
    const { sc, running } = c;
    try {
      const taken = await revert(c);
      expect(taken.code, taken.stderr).toBe(0);
      // killed once the checkpoint says a few ranges were compared, the triggers carrying writes into the original
      let compared = 0;
      while (running.child.exitCode === null && compared < 3) {
        const [rows] = await sc.conn.query(`SELECT phase, state FROM \`${sc.db}\`._ferry_checkpoints WHERE migration_id = ?`, [sc.migrationId]);
        const cp = (rows as { phase: string; state: string }[])[0];
        compared = cp?.phase === 'revert' ? (JSON.parse(cp.state).revert?.rangesVerified ?? 0) : 0;
        if (compared >= 3) running.child.kill('SIGKILL');
        else await new Promise((r) => setTimeout(r, 2));
      }
      const first = await running.done;
      expect(first.signal, `the run ended before it was killed:\n${first.stderr}`).toBe('SIGKILL');
      expect(await sc.triggers(), 'the revert was killed with its triggers on the table').toHaveLength(3);

      const second = startFerry(c.args);
      const asked = second.waitFor(/waiting for approval "cleanup"/, 240_000).then(() => 'asked', () => 'ended');
      expect(await Promise.race([second.done.then(() => 'ended'), asked]), `the second run asked for the cleanup approval again:\n${second.stderr()}`).toBe('ended');
      expectReverted(await second.done);
      await new Promise((r) => setTimeout(r, 500));
      await expectOriginalWithEveryWrite(c, await stopWriters(c));

      // after a revert the same input starts again from what is there, and alters the table
      const again = await startFerry([...c.args.slice(0, -1), 'all']).done;
      expect(again.code, again.stderr).toBe(0);
      expect(again.last, again.stdout).toMatchObject({ phase: 'done' });
      expect(await sc.columnType()).toBe('bigint(20) unsigned');
      const [table, reference] = [await tableContent(sc.conn, sc.db, CSM), await tableContent(sc.conn, sc.db, 'reference')];
      expect({ rows: table.rows, checksum: table.checksum }).toEqual({ rows: reference.rows, checksum: reference.checksum });
    } finally {
      running.child.kill('SIGKILL');
      await Promise.all(c.writers.map((w) => w.stop()));
      await sc.close();
    }
  }, 480_000);
});
