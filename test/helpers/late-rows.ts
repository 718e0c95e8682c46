import type mysql from 'mysql2/promise';
import { afterEach, expect } from 'vitest';
import { runFerry, type Running } from './cli.ts';
import { admin, tableFingerprint } from './db.ts';
import { SRC, TGT, type Scenario } from './scenario.ts';

/** Every other id handed out, as with auto_increment_increment = 2 (or the ids upserts and rollbacks burn). */
export const EVERY_OTHER_ID = 'SET SESSION auto_increment_increment = 2, auto_increment_offset = 2';

export interface LateRow {
  readonly id: string;
  commit(): Promise<void>;
}

/**
 * What the table-copy tests of rows committed late share: a row inserted by a transaction that
 * stays open, rows committed above it meanwhile, and the end of a run once it commits. Call inside
 * a describe: the test's scenario (`use`) and the sessions it left open are closed after each test.
 */
export function lateRows() {
  let sc: Scenario | undefined;
  const open: mysql.Connection[] = [];
  afterEach(async () => {
    for (const c of open.splice(0)) await c.end().catch(() => undefined);
    await sc?.close();
    sc = undefined;
  });

  /** The test's scenario, closed after it. */
  const use = (s: Scenario): Scenario => (sc = s);

  /** A session of the test's own, ended after it. */
  const session = async (): Promise<mysql.Connection> => {
    const c = await admin();
    open.push(c);
    return c;
  };

  const approve = (s: Scenario, step: string) => runFerry(['approve', s.input().migrationId as string, '--step', step, '--state-dir', s.stateDir]);

  /** A session that inserts a row and keeps its transaction open: its id is taken, the row invisible. */
  async function lateRow(s: Scenario, everyOtherId = false): Promise<LateRow> {
    const late = await session();
    if (everyOtherId) await late.query(EVERY_OTHER_ID);
    await late.query('START TRANSACTION');
    const [r] = await late.query(`INSERT INTO \`${s.src}\`.${SRC} (created, state, student_module_id) VALUES (NOW(6), 'committed late', 7)`);
    return { id: String((r as { insertId: number }).insertId), commit: async () => void (await late.query('COMMIT')) };
  }

  /** Other sessions insert and commit rows with higher ids while the late one is open. */
  async function laterRows(s: Scenario, n: number, everyOtherId = false): Promise<void> {
    if (everyOtherId) await s.conn.query(EVERY_OTHER_ID);
    for (let i = 0; i < n; i++) await s.conn.query(`INSERT INTO \`${s.src}\`.${SRC} (created, state, student_module_id) VALUES (NOW(6), 'on time', ?)`, [i]);
  }

  async function targetRow(s: Scenario, id: string): Promise<{ state: string | null } | undefined> {
    const [rows] = await s.conn.query(`SELECT state FROM \`${s.tgt}\`.${TGT} WHERE id = ?`, [id]);
    return (rows as { state: string | null }[])[0];
  }

  /**
   * With the run waiting for the cut-over approval: the late row commits, both approvals are given,
   * and the run must end with that row copied and the target holding everything the source held.
   */
  async function commitLateAndFinish(s: Scenario, running: Running, late: LateRow) {
    await late.commit();
    const everything = await tableFingerprint(s.conn, s.src, SRC);
    expect((await approve(s, 'cutover')).code).toBe(0);
    await running.waitFor(/waiting for approval "cleanup"/);
    expect(await targetRow(s, late.id)).toEqual({ state: 'committed late' });
    expect((await approve(s, 'cleanup')).code).toBe(0);
    const run = await running.done;
    expect(run.code, run.stderr).toBe(0);
    expect(run.last).toMatchObject({ phase: 'done', lateRowsCopied: '1' });
    expect(await tableFingerprint(s.conn, s.tgt, TGT)).toEqual(everything);
    return { run, everything };
  }

  return { use, session, approve, lateRow, laterRows, targetRow, commitLateAndFinish };
}
