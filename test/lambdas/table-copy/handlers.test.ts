import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileMigrationClaims } from '../../../lambdas/adapters/claims.ts';
import { FileFlagStore } from '../../../lambdas/adapters/flags.ts';
import { Mysql2Connector } from '../../../lambdas/adapters/mysql2.ts';
import type { SqlConnection, SqlConnector } from '../../../lambdas/core/ports/sql.ts';
import type { TaskDeps } from '../../../lambdas/core/ports/task-deps.ts';
import { TransientError } from '../../../lambdas/core/errors.ts';
import { catchUp } from '../../../lambdas/table-copy/catch-up.ts';
import { cleanup } from '../../../lambdas/table-copy/cleanup.ts';
import { copyChunks } from '../../../lambdas/table-copy/copy-chunks.ts';
import { copyPartition, finishPartitions, planPartitions, type PartitionEvent } from '../../../lambdas/table-copy/partitions.ts';
import { setCopyFlags, setCutoverFlags } from '../../../lambdas/table-copy/flags.ts';
import { ledgerOf, openMigration, type LoopState, type TaskEvent } from '../../../lambdas/table-copy/open-migration.ts';
import { preflight } from '../../../lambdas/table-copy/preflight.ts';
import { raiseAutoIncrement } from '../../../lambdas/table-copy/raise-auto-increment.ts';
import { sweep } from '../../../lambdas/table-copy/sweep.ts';
import { verify } from '../../../lambdas/table-copy/verify.ts';
import { oldTableBehind } from '../../../lambdas/table-copy/revert.ts';
import { MYSQL_URL, tableFingerprint } from '../../helpers/db.ts';
import { scenario, SRC, TGT, type Scenario } from '../../helpers/scenario.ts';

/** Every statement sent, and whether this session held LOCK TABLES when it was sent. */
class Recorder implements SqlConnector {
  readonly statements: { sql: string; locked: boolean }[] = [];
  constructor(private readonly inner: SqlConnector) {}
  private wrap(conn: SqlConnection): SqlConnection {
    let locked = false;
    const note = (sql: string) => {
      if (/^LOCK TABLES/.test(sql)) locked = true;
      this.statements.push({ sql, locked });
      if (/^UNLOCK TABLES/.test(sql)) locked = false;
    };
    return Object.assign(Object.create(conn) as SqlConnection, {
      query: (sql: string, params?: readonly unknown[]) => (note(sql), conn.query(sql, params)),
      execute: (sql: string, params?: readonly unknown[]) => (note(sql), conn.execute(sql, params)),
    });
  }
  async connect(name: string) {
    return this.wrap(await this.inner.connect(name));
  }
  async connectDedicated(name: string) {
    return this.wrap(await this.inner.connectDedicated(name));
  }
  closeAll() {
    return this.inner.closeAll();
  }
}

describe('table-copy handlers, as Lambda would run them', () => {
  let sc: Scenario | undefined;
  const sql = new Mysql2Connector({ MYSQL_URL });
  afterEach(async () => {
    await sql.closeAll();
    await sc?.close();
    sc = undefined;
  });

  function deps(s: Scenario, running: (id: string) => boolean, connector: SqlConnector = sql): TaskDeps {
    return {
      executions: { isRunning: async (id) => running(id), handedOver: async () => false },
      sql: connector,
      couch: { database: async () => Promise.reject(new Error('no CouchDB here')) },
      flags: new FileFlagStore(join(s.dir, 'state')),
      knobs: new FileFlagStore(join(s.dir, 'state'), 'knobs'),
      claims: new FileMigrationClaims(join(s.dir, 'state')),
      budgetMillis: 10_000,
      now: Date.now,
      report: () => undefined,
    };
  }

  /** Runs a looping task until it says done, as the state machine's Choice and Wait would. */
  async function loop(task: (e: TaskEvent, d: TaskDeps) => Promise<LoopState>, event: { migration: unknown; state?: unknown; execution?: string }, d: TaskDeps): Promise<LoopState> {
    for (;;) {
      const state = await task(event as TaskEvent, d);
      event.state = state;
      if (state.done) return state;
      await new Promise((r) => setTimeout(r, Math.min(state.waitSeconds * 1000, 200)));
    }
  }

  it('a task of an execution that was replaced cannot move the checkpoint its successor owns', async () => {
    sc = await scenario({ rows: 2000 });
    const migration = sc.input({ cleanup: { mode: 'none' }, chunk: { targetMillis: 10, minRows: 50, maxRows: 100 } });
    const old = { migration, execution: 'arn:exec:old', state: null as unknown };
    const d = deps(sc, (id) => id === 'arn:exec:new');
    await preflight(old as TaskEvent, d);
    await raiseAutoIncrement(old as TaskEvent, d);
    await setCopyFlags(old as TaskEvent, d);
    await copyChunks({ ...old, state: { iterations: 1 } } as TaskEvent, { ...d, budgetMillis: 1 });
    // the old execution is stopped (its Lambda still runs, a task already under way); a new one takes the migration over
    const running = await openMigration(old as TaskEvent, d);
    const fresh = { migration, execution: 'arn:exec:new', state: null as unknown };
    await preflight(fresh as TaskEvent, d);
    const ledgerRows = async () => (await sc!.conn.query(`SELECT CAST(lo AS CHAR) AS lo, CAST(hi AS CHAR) AS hi, source_rows FROM \`${sc!.tgt}\`._ferry_ledger l ORDER BY l.lo`))[0];
    const [before] = await sc.conn.query(`SELECT phase, state FROM \`${sc.tgt}\`._ferry_checkpoints`);
    const spans = await ledgerRows();
    await expect(copyChunks(old as TaskEvent, d)).rejects.toMatchObject({ name: 'OwnershipLost', message: expect.stringContaining('arn:exec:new') });
    // nor can the task already under way replace a span of the ledger, or settle one
    const span = { lo: '1', hi: '5000', rows: '0', checksum: null, holes: [], settled: true };
    await expect(ledgerOf(running).record(span)).rejects.toMatchObject({ name: 'OwnershipLost', message: expect.stringContaining('arn:exec:new') });
    await expect(ledgerOf(running).update(span)).rejects.toMatchObject({ name: 'OwnershipLost' });
    expect(await ledgerRows()).toEqual(spans);
    const [after] = await sc.conn.query(`SELECT phase, state FROM \`${sc.tgt}\`._ferry_checkpoints`);
    expect(after).toEqual(before);
    // the owner goes on and finishes, with every row
    await loop(copyChunks, fresh, d);
    expect((await tableFingerprint(sc.conn, sc.tgt, TGT)).rows).toBe('2000');
  });

  it("beside a pending cleanup approval, says how far the old table trails (what the scheduled function reports on AWS), reading only", async () => {
    sc = await scenario({ rows: 1500 });
    const migration = sc.input({ cleanup: { mode: 'none' }, catchUp: { quietSeconds: 0, pollSeconds: 1 } });
    const event = { migration, execution: 'arn:exec:one', state: null as unknown };
    const d = deps(sc, (id) => id === event.execution);
    await preflight(event as TaskEvent, d);
    for (const task of [raiseAutoIncrement, setCopyFlags]) await task(event as TaskEvent, d);
    for (const task of [copyChunks, catchUp, verify]) await loop(task, event, d);
    expect(await oldTableBehind(event as TaskEvent, d)).toEqual({ note: 'no cleanup approval is pending (phase cutover-approval)' });
    await setCutoverFlags(event as TaskEvent, d);
    await loop(sweep, event, d);
    await sc.conn.query(`INSERT INTO \`${sc.tgt}\`.${TGT} (created, student_module_id, state) VALUES (NOW(6), 1, 'a'), (NOW(6), 2, 'b'), (NOW(6), 3, 'c')`);
    const [before] = await sc.conn.query(`SELECT phase, state FROM \`${sc.tgt}\`._ferry_checkpoints`);
    const { note } = await oldTableBehind(event as TaskEvent, d);
    expect(note).toMatch(new RegExp(`^old table: ${sc.src}\\.${SRC} lacks the 3 rows the application inserted in ${sc.tgt}\\.${TGT} since the copy flags \\(ids above \\d+\\)`));
    const [after] = await sc.conn.query(`SELECT phase, state FROM \`${sc.tgt}\`._ferry_checkpoints`);
    expect(after).toEqual(before);
  });

  it('partitions: each copies on from its own row, empty ones included; one not through hands over; a replaced execution writes none', async () => {
    // ids in the lowest and highest thirds only: the middle partition holds no row
    sc = await scenario({ rows: 1000, first: 1n });
    const { seedHistory } = await import('../../helpers/db.ts');
    await seedHistory(sc.conn, sc.src, SRC, 1000, { first: 9001n });
    const migration = sc.input({ partitions: 3, idOffset: '0', cleanup: { mode: 'none' }, chunk: { targetMillis: 10, minRows: 100, maxRows: 200 } });
    const event = { migration, execution: 'arn:exec:one', state: null as unknown };
    const d = deps(sc, (id) => id === event.execution);
    await preflight(event as TaskEvent, d);
    for (const task of [raiseAutoIncrement, setCopyFlags]) await task(event as TaskEvent, d);
    const plan = await planPartitions(event as TaskEvent, d);
    expect(plan.items).toEqual([{ index: 0 }, { index: 1 }, { index: 2 }]);
    const part = (index: number, execution = event.execution) => ({ ...event, execution, partition: { index }, state: { iterations: 0 } }) as PartitionEvent;
    // no time left: nothing copied, and the Map ends with partitions not through
    expect(await copyPartition(part(0), { ...d, budgetMillis: 1 })).toMatchObject({ done: false });
    expect(await finishPartitions(event as TaskEvent, d)).toMatchObject({ done: false, continueAsNew: true });
    // a new execution takes over: the old one's task cannot move a partition's row
    const fresh = { ...event, execution: 'arn:exec:two' };
    await preflight(fresh as TaskEvent, { ...d, executions: { isRunning: async (id) => id === 'arn:exec:two', handedOver: async () => false } });
    const d2 = deps(sc, (id) => id === 'arn:exec:two');
    await expect(copyPartition(part(0), d2)).rejects.toMatchObject({ name: 'OwnershipLost' });
    expect(await planPartitions(fresh as TaskEvent, d2)).toEqual(plan);
    for (const index of [2, 1, 0]) expect(await copyPartition(part(index, fresh.execution), d2)).toMatchObject({ done: true });
    expect(await planPartitions(fresh as TaskEvent, d2)).toEqual({ items: [] });
    await sc.conn.query(`CREATE TABLE \`${sc.tgt}\`.kept_partitions AS SELECT * FROM \`${sc.tgt}\`._ferry_partitions`);
    expect(await finishPartitions(fresh as TaskEvent, d2)).toMatchObject({ done: true, phase: 'catch-up' });
    // a retry after the sums were saved but before the rows were deleted (the Lambda timed out, the DELETE failed) adds nothing again
    await sc.conn.query(`INSERT INTO \`${sc.tgt}\`._ferry_partitions SELECT * FROM \`${sc.tgt}\`.kept_partitions`);
    const [[saved]] = (await sc.conn.query(`SELECT state FROM \`${sc.tgt}\`._ferry_checkpoints`)) as unknown as [{ state: string }[]];
    expect(await finishPartitions(fresh as TaskEvent, d2)).toMatchObject({ done: true, phase: 'catch-up' });
    // and an execution that was replaced plans nothing
    await expect(planPartitions(event as TaskEvent, d2)).rejects.toMatchObject({ name: 'OwnershipLost' });
    const [[row]] = (await sc.conn.query(`SELECT phase, state FROM \`${sc.tgt}\`._ferry_checkpoints`)) as unknown as [{ phase: string; state: string }[]];
    expect(row!.state).toBe(saved!.state);
    const state = JSON.parse(row!.state) as { copiedUpTo: string; verifiedUpTo: string; rowsCopied: string; rowsVerified: string };
    expect(state).toMatchObject({ copiedUpTo: '10000', verifiedUpTo: '10000', rowsCopied: '2000', rowsVerified: '2000' });
    // the ledger's spans cover every id without a gap, the empty middle partition too
    const [spans] = await sc.conn.query(`SELECT CAST(lo AS CHAR) AS lo, CAST(hi AS CHAR) AS hi FROM \`${sc.tgt}\`._ferry_ledger l ORDER BY l.lo`);
    const list = spans as { lo: string; hi: string }[];
    for (let i = 1; i < list.length; i++) expect(BigInt(list[i]!.lo)).toBe(BigInt(list[i - 1]!.hi) + 1n);
    expect(list.at(-1)!.hi).toBe('10000');
    expect(await tableFingerprint(sc.conn, sc.tgt, TGT)).toEqual(await tableFingerprint(sc.conn, sc.src, SRC));
    const [left] = await sc.conn.query(`SELECT COUNT(*) AS n FROM \`${sc.tgt}\`._ferry_partitions`);
    expect(String((left as { n: string }[])[0]!.n)).toBe('0');
  });

  it('the initial copy verifies each chunk behind it, on sessions of its own, and records it in the ledger', async () => {
    sc = await scenario({ rows: 3000 });
    const migration = sc.input({ cleanup: { mode: 'none' }, chunk: { targetMillis: 10, minRows: 100, maxRows: 200 } });
    const event = { migration, execution: 'arn:exec:one', state: null as unknown };
    const recorder = new Recorder(sql);
    const d = deps(sc, () => true, recorder);
    await preflight(event as TaskEvent, d);
    for (const task of [raiseAutoIncrement, setCopyFlags]) await task(event as TaskEvent, d);
    await loop(copyChunks, event, d);
    const [[row]] = (await sc.conn.query(`SELECT phase, state FROM \`${sc.tgt}\`._ferry_checkpoints`)) as unknown as [{ phase: string; state: string }[]];
    const state = JSON.parse(row!.state) as { copiedUpTo: string; verifiedUpTo: string; rangesVerified: number; rowsVerified: string };
    expect(row!.phase).toBe('catch-up');
    expect(state.verifiedUpTo).toBe(state.copiedUpTo);
    expect(state.rowsVerified).toBe('3000');
    expect(state.rangesVerified).toBeGreaterThan(5);
    // the ledger's spans are contiguous from the type's lowest id to the last one copied
    const [spans] = (await sc.conn.query(`SELECT CAST(lo AS CHAR) AS lo, CAST(hi AS CHAR) AS hi, source_rows FROM \`${sc.tgt}\`._ferry_ledger l ORDER BY l.lo`)) as unknown as [{ lo: string; hi: string; source_rows: string }[]];
    expect(spans.length).toBe(state.rangesVerified);
    for (let i = 1; i < spans.length; i++) expect(BigInt(spans[i]!.lo)).toBe(BigInt(spans[i - 1]!.hi) + 1n);
    expect(spans.at(-1)!.hi).toBe(state.copiedUpTo);
    expect(spans.reduce((n, sp) => n + BigInt(sp.source_rows), 0n)).toBe(3000n);
    // and the Verify phase has nothing left to compare
    const checksums = () => recorder.statements.filter((st) => /row_count/.test(st.sql)).length;
    for (const task of [catchUp]) await loop(task, event, d);
    const before = checksums();
    await loop(verify, event, d);
    expect(checksums() - before).toBeLessThanOrEqual(2);
  });

  it('rows are hashed with SHA-1; a migration whose checkpoint an older ferry wrote keeps the MD5 its ledger was recorded with', async () => {
    sc = await scenario({ rows: 1000 });
    const migration = sc.input({ cleanup: { mode: 'none' }, chunk: { targetMillis: 10, minRows: 100, maxRows: 200 } });
    const event = { migration, execution: 'arn:exec:one', state: null as unknown };
    const recorder = new Recorder(sql);
    const d = deps(sc, () => true, recorder);
    await preflight(event as TaskEvent, d);
    const hashes = () => recorder.statements.filter((st) => /row_count/.test(st.sql)).map((st) => /\b(MD5|SHA1)\(/.exec(st.sql)?.[1]);
    const [[row]] = (await sc.conn.query(`SELECT state FROM \`${sc.tgt}\`._ferry_checkpoints`)) as unknown as [{ state: string }[]];
    expect(JSON.parse(row!.state).rowHash).toBe('sha1');
    // as an older ferry left it: no rowHash in the checkpoint
    await sc.conn.query(`UPDATE \`${sc.tgt}\`._ferry_checkpoints SET state = JSON_REMOVE(state, '$.rowHash')`);
    for (const task of [raiseAutoIncrement, setCopyFlags]) await task(event as TaskEvent, d);
    await loop(copyChunks, event, d);
    expect(hashes().length).toBeGreaterThan(2);
    expect(new Set(hashes())).toEqual(new Set(['MD5']));
    // the ledger's checksums are MD5's: a span's checksum is the XOR of its rows' first 64 bits of MD5
    const [[span]] = (await sc.conn.query(`SELECT CAST(lo AS CHAR) AS lo, CAST(hi AS CHAR) AS hi, checksum FROM \`${sc.tgt}\`._ferry_ledger WHERE source_rows > 0 ORDER BY lo LIMIT 1`)) as unknown as [{ lo: string; hi: string; checksum: string }[]];
    const [[md5]] = (await sc.conn.query(
      `SELECT CAST(BIT_XOR(CAST(CONV(LEFT(MD5(CONCAT_WS(',', ${['id', 'version', 'created', 'state', 'grade', 'max_grade', 'student_module_id'].map((c) => `IFNULL(CONCAT(LENGTH(${c}), ':', ${c}), 'N')`).join(', ')})), 16), 16, 10) AS UNSIGNED)) AS CHAR) AS c FROM \`${sc.src}\`.\`${SRC}\` WHERE id BETWEEN ? AND ?`,
      [span!.lo, span!.hi],
    )) as unknown as [{ c: string }[]];
    expect(span!.checksum).toBe(md5!.c);
  });

  it('a verifier session lost while the copy runs fails the task as transient, and a re-run resumes with every row', async () => {
    sc = await scenario({ rows: 3000 });
    const migration = sc.input({ cleanup: { mode: 'none' }, chunk: { targetMillis: 10, minRows: 100, maxRows: 200 } });
    const event = { migration, execution: 'arn:exec:one', state: null as unknown };
    const d = deps(sc, () => true);
    await preflight(event as TaskEvent, d);
    for (const task of [raiseAutoIncrement, setCopyFlags]) await task(event as TaskEvent, d);
    // the verifier's own sessions answer a few statements, then the server drops them
    let answered = 0;
    const dropping: SqlConnector = {
      connect: (name) => sql.connect(name),
      connectDedicated: async (name) => {
        const conn = await sql.connectDedicated(name);
        const fail = () => Promise.reject(new TransientError(`${name}: query failed: Connection lost: The server closed the connection.`));
        return Object.assign(Object.create(conn) as SqlConnection, {
          query: (q: string, p?: readonly unknown[]) => (++answered > 12 ? fail() : conn.query(q, p)),
          execute: (q: string, p?: readonly unknown[]) => (++answered > 12 ? fail() : conn.execute(q, p)),
        });
      },
      closeAll: () => sql.closeAll(),
    };
    await expect(copyChunks(event as TaskEvent, { ...d, sql: dropping })).rejects.toMatchObject({ name: 'TransientError' });
    await loop(copyChunks, event, d);
    await loop(catchUp, event, d);
    await loop(verify, event, d);
    expect(await tableFingerprint(sc.conn, sc.tgt, TGT)).toEqual(await tableFingerprint(sc.conn, sc.src, SRC));
    const [[row]] = (await sc.conn.query(`SELECT state FROM \`${sc.tgt}\`._ferry_checkpoints`)) as unknown as [{ state: string }[]];
    expect(JSON.parse(row!.state)).toMatchObject({ verifiedUpTo: '3000', rowsVerified: '3000' });
  });

  it('while it measures the insert rate to choose idOffset, the initial copy already runs', async () => {
    sc = await scenario({ rows: 3000 });
    const migration = sc.input({ cleanup: { mode: 'none' }, chunk: { targetMillis: 10, minRows: 100, maxRows: 200 } });
    delete (migration as { idOffset?: unknown }).idOffset;
    const event = { migration, execution: 'arn:exec:one', state: null as unknown };
    const d = deps(sc, () => true);
    await preflight(event as TaskEvent, d);
    const started = Date.now();
    await raiseAutoIncrement(event as TaskEvent, d);
    expect(Date.now() - started).toBeGreaterThanOrEqual(9_000);
    const read = async () => {
      const [[row]] = (await sc!.conn.query(`SELECT phase, state FROM \`${sc!.tgt}\`._ferry_checkpoints`)) as unknown as [{ phase: string; state: string }[]];
      return { phase: row!.phase, ...(JSON.parse(row!.state) as { copiedUpTo: string; verifiedUpTo: string; rowsCopied: string; idOffset: string }) };
    };
    const measured = await read();
    expect(measured).toMatchObject({ phase: 'prepare', copiedUpTo: '3000', verifiedUpTo: '3000', rowsCopied: '3000', idOffset: '1000000' });
    expect((await tableFingerprint(sc.conn, sc.tgt, TGT)).rows).toBe('3000');
    // the copy phase finds nothing left, and copies nothing twice
    await setCopyFlags(event as TaskEvent, d);
    await loop(copyChunks, event, d);
    expect(await read()).toMatchObject({ phase: 'catch-up', copiedUpTo: '3000', rowsCopied: '3000' });
    expect(await tableFingerprint(sc.conn, sc.tgt, TGT)).toEqual(await tableFingerprint(sc.conn, sc.src, SRC));
  });

  it('a source that received no row since Preflight is quiet since then: the catch-up does not wait again', async () => {
    for (const written of [false, true]) {
      sc = await scenario({ rows: 2000 });
      const migration = sc.input({ cleanup: { mode: 'none' }, catchUp: { quietSeconds: 2, pollSeconds: 1 } });
      const event = { migration, execution: 'arn:exec:one', state: null as unknown };
      const d = deps(sc, () => true);
      await preflight(event as TaskEvent, d);
      for (const task of [raiseAutoIncrement, setCopyFlags]) await task(event as TaskEvent, d);
      if (written) await sc.conn.query(`INSERT INTO \`${sc.src}\`.${SRC} (created, student_module_id) VALUES (NOW(6), 7)`);
      // the quiet period is longer than the copy, not than the time since Preflight
      await new Promise((r) => setTimeout(r, 2_100));
      await loop(copyChunks, event, d);
      const started = Date.now();
      const state = await catchUp(event as TaskEvent, d);
      // untouched: done at once; written to: the row is copied, then the catch-up waits out its quiet period
      expect(state.done).toBe(!written);
      expect(state.progress.rowsCopied).toBe(written ? '2001' : '2000');
      if (written) expect(state.waitSeconds).toBeGreaterThan(0);
      expect(Date.now() - started).toBeLessThan(5_000);
      await sql.closeAll();
      await sc.close();
      sc = undefined;
    }
  });

  it('truncate holds the lock only for index probes and the TRUNCATE: no count of the table under it', async () => {
    sc = await scenario({ rows: 3000 });
    const migration = sc.input({ cleanup: { mode: 'truncate' } });
    const event = { migration, execution: 'arn:exec:one', state: null as unknown };
    const d = deps(sc, () => true);
    await preflight(event as TaskEvent, d);
    for (const task of [raiseAutoIncrement, setCopyFlags]) await task(event as TaskEvent, d);
    for (const task of [copyChunks, catchUp, verify]) await loop(task, event, d);
    await setCutoverFlags(event as TaskEvent, d);
    await loop(sweep, event, d);
    const recorder = new Recorder(sql);
    await loop(cleanup, event, deps(sc, () => true, recorder));
    expect((await tableFingerprint(sc.conn, sc.src, SRC)).rows).toBe('0');
    expect((await tableFingerprint(sc.conn, sc.tgt, TGT)).rows).toBe('3000');
    const underLock = recorder.statements.filter((s) => s.locked).map((s) => s.sql.replace(/\s+/g, ' '));
    expect(underLock[0]).toMatch(/^LOCK TABLES/);
    expect(underLock.some((s) => /^TRUNCATE TABLE/.test(s))).toBe(true);
    expect(underLock.filter((s) => /COUNT\(/i.test(s))).toEqual([]);
    // every statement under the lock is an index probe, the counter read and put back, or the TRUNCATE
    const cheap = [/^(UN)?LOCK TABLES/, /^SELECT MIN\(`id`\) AS min_id, MAX\(`id`\) AS max_id FROM /, /^SET SESSION information_schema_stats_expiry = 0$/, /^SELECT AUTO_INCREMENT FROM information_schema\.TABLES WHERE/, /^TRUNCATE TABLE /, /^ALTER TABLE \S+ AUTO_INCREMENT = 3001$/];
    expect(underLock.filter((s) => !cheap.some((re) => re.test(s)))).toEqual([]);
  });
});
