import { expect } from 'vitest';
import { startFerry, type CliResult, type Running } from './cli.ts';
import { failures, replayStudentModuleWrites, type AppOp, type AppWriter } from './app-writer.ts';
import { alterScenario, CSM, tableContent, tableSchema, type AlterScenario } from './alter-scenario.ts';

/** The scenario's rows; its ids run to about REVERT_ROWS + 1000 (a gap of 1000 in the middle), MAX_ID, which the writers update and delete among. */
export const REVERT_ROWS = 20_000;
export const MAX_ID = REVERT_ROWS + 1000;

export interface CutOver {
  readonly sc: AlterScenario;
  readonly writers: AppWriter[];
  readonly running: Running;
  /** The `ferry local` command, to run it again. */
  readonly args: string[];
  readonly schemaBefore: string;
  /** When the cleanup approval was first seen pending: the application writes the altered table from before then. */
  readonly cutOverAt: number;
}

/**
 * An online-alter of courseware_studentmodule (REVERT_ROWS rows, in a database of `role`) with
 * `alter` and `input`'s fields, `--approve cutover`, the writers `writers` starts from before the run, up to the pending cleanup approval
 * and 1.5 s beyond it.
 */
export async function cutOver(writers: (sc: AlterScenario) => AppWriter[], alter: string, input: Record<string, unknown> = {}, role?: string): Promise<CutOver> {
  const sc = await alterScenario(REVERT_ROWS, role);
  const schemaBefore = await tableSchema(sc.conn, sc.db, CSM);
  const started = writers(sc);
  const args = ['local', 'online-alter', '--input', sc.inputFile({ alter, cleanup: { mode: 'drop' }, ...input }), '--state-dir', sc.stateDir, '--approve', 'cutover'];
  const running = startFerry(args);
  await running.waitFor(/waiting for approval "cleanup"/, 240_000);
  // the application goes on writing the altered table for a while before anyone reverts
  await new Promise((r) => setTimeout(r, 1500));
  return { sc, writers: started, running, args, schemaBefore, cutOverAt: Date.now() };
}

export function askRevert(c: { sc: { migrationId: string; stateDir: string } }, reason = 'the altered table answers slowly'): Promise<CliResult> {
  return startFerry(['revert', c.sc.migrationId, '--reason', reason, '--state-dir', c.sc.stateDir]).done;
}

export function expectReverted(run: CliResult): void {
  expect(run.code, run.stderr).toBe(0);
  expect(run.last, run.stdout).toMatchObject({ outcome: 'reverted', phase: 'reverted' });
}

/** What a test leaves: the run killed if it still runs, the writers stopped, the databases dropped. */
export async function endCutOver(c: CutOver): Promise<void> {
  c.running.child.kill('SIGKILL');
  await Promise.all(c.writers.map((w) => w.stop()));
  await c.sc.close();
}

/** The application inserted rows in the altered table after the cut-over: a revert has writes of its to carry. */
export function expectInsertsAfterCutOver(c: CutOver, ops: readonly AppOp[]): void {
  expect(ops.filter((o) => o.startedAt > c.cutOverAt && o.op === 'insert').length, 'the application inserted after the cut-over').toBeGreaterThan(20);
}

/** Every statement the writers sent, in the order they began. */
export async function stopWriters(c: CutOver): Promise<AppOp[]> {
  return (await Promise.all(c.writers.map((w) => w.stop()))).flat().sort((a, b) => a.startedAt - b.startedAt);
}

/**
 * The end state of a revert, once the writers stopped: the table is the original again (its
 * schema as before the run, nothing of ferry's left), and holds exactly what the reference table
 * holds once it received every write the application made (and `alsoOnReference`'s); none of those
 * writes failed, and the counter continues above every id handed out.
 */
export async function expectOriginalWithEveryWrite(c: CutOver, ops: AppOp[], alsoOnReference: () => Promise<void> = async () => undefined): Promise<void> {
  const { sc } = c;
  expect(failures(ops), "the application's writes that failed").toEqual([]);
  expect(await tableSchema(sc.conn, sc.db, CSM)).toBe(c.schemaBefore);
  expect((await sc.tables()).filter((t) => t !== CSM && t !== 'reference' && t !== '_ferry_checkpoints'), "ferry's tables left").toEqual([]);
  expect(await sc.triggers(), 'triggers left').toEqual([]);
  await replayStudentModuleWrites(sc.conn, sc.db, 'reference', ops);
  await alsoOnReference();
  const [table, reference] = [await tableContent(sc.conn, sc.db, CSM), await tableContent(sc.conn, sc.db, 'reference')];
  expect({ rows: table.rows, checksum: table.checksum }).toEqual({ rows: reference.rows, checksum: reference.checksum });
  const [ai] = await sc.conn.query('SELECT AUTO_INCREMENT AS a FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [sc.db, CSM]);
  const highest = ops.filter((o) => o.insertId).reduce((m, o) => (BigInt(o.insertId!) > m ? BigInt(o.insertId!) : m), 0n);
  expect(BigInt((ai as { a: string }[])[0]!.a) > highest, 'AUTO_INCREMENT continues above every id handed out').toBe(true);
}

/**
 * After a revert: the application goes on writing the original table for `writeOnMillis`, then
 * stops; it inserted after the cut-over, and every write it made is in the original (see
 * expectOriginalWithEveryWrite). Returns its statements.
 */
export async function expectEveryWriteAfterRevert(c: CutOver, writeOnMillis: number): Promise<AppOp[]> {
  await new Promise((r) => setTimeout(r, writeOnMillis));
  const ops = await stopWriters(c);
  expectInsertsAfterCutOver(c, ops);
  await expectOriginalWithEveryWrite(c, ops);
  return ops;
}
