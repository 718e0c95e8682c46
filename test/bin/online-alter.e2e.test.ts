import { describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { runFerry, startFerry } from '../helpers/cli.ts';
import { admin } from '../helpers/db.ts';
import { alterScenario, csmFingerprint, CSM, type AlterScenario } from '../helpers/alter-scenario.ts';

async function autoIncrement(sc: AlterScenario): Promise<bigint> {
  const [r] = await sc.conn.query('SELECT AUTO_INCREMENT AS ai FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [sc.db, CSM]);
  return BigInt((r as { ai: string }[])[0]!.ai);
}

async function checkpointPhase(sc: AlterScenario): Promise<{ phase: string; rowsCopied: bigint } | null> {
  const [rows] = await sc.conn.query(`SELECT phase, state FROM \`${sc.db}\`._ferry_checkpoints`).catch(() => [[]] as never);
  const row = (rows as { phase: string; state: string }[])[0];
  return row ? { phase: row.phase, rowsCopied: BigInt(JSON.parse(row.state).rowsCopied) } : null;
}

/** Local runs of statemachines/online-alter.asl.json against the real MariaDB, with a live writer. */
describe('ferry local online-alter', () => {
  it('widens the id of a table being inserted, updated and deleted, swaps it atomically and loses no write', async () => {
    const sc = await alterScenario(6000);
    try {
      const aiBefore = await autoIncrement(sc);
      const writer = sc.startWriter();
      const run = await runFerry(['local', 'online-alter', '--input', sc.inputFile(), '--state-dir', sc.stateDir, '--approve', 'all']);
      const counts = await writer.stop();
      expect(run.code, run.stderr).toBe(0);
      expect(counts.inserts + counts.updates + counts.deletes).toBeGreaterThan(30);
      expect(await sc.columnType()).toBe('bigint(20) unsigned');
      expect(await csmFingerprint(sc.conn, sc.db, CSM)).toEqual(await csmFingerprint(sc.conn, sc.db, 'reference'));
      expect(await sc.tables()).toEqual(['_ferry_checkpoints', CSM, 'reference']);
      expect(await sc.triggers()).toEqual([]);
      // ids continue above every id the old table handed out, including its deleted top id
      expect(await autoIncrement(sc)).toBeGreaterThanOrEqual(aiBefore);
      const [r] = await sc.conn.query(`INSERT INTO \`${sc.db}\`.${CSM} (module_id, student_id, created, modified, course_id) VALUES ('after', 42, NOW(6), NOW(6), 'c')`);
      expect(BigInt((r as { insertId: number }).insertId)).toBeGreaterThanOrEqual(aiBefore);
      expect(run.last).toMatchObject({ phase: 'done', idColumnType: 'bigint(20) unsigned', cleanup: 'trickle-delete' });
    } finally {
      await sc.close();
    }
  });

  it('resumes after SIGKILL mid-copy and again while waiting for the cut-over, with the writer running throughout', async () => {
    const sc = await alterScenario(20000);
    try {
      const writer = sc.startWriter();
      const file = sc.inputFile({ chunk: { targetMillis: 10, minRows: 50, maxRows: 100 } });
      const first = startFerry(['local', 'online-alter', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all']);
      for (;;) {
        const cp = await checkpointPhase(sc);
        if (cp?.phase === 'copy' && cp.rowsCopied > 2000n) break;
        expect(first.child.exitCode, first.stderr()).toBeNull();
        await new Promise((r) => setTimeout(r, 5));
      }
      first.child.kill('SIGKILL');
      await first.done;
      const second = startFerry(['local', 'online-alter', '--input', file, '--state-dir', sc.stateDir]);
      await second.waitFor(/waiting for approval "cutover"/);
      expect((await checkpointPhase(sc))!.phase).toBe('cutover-approval');
      second.child.kill('SIGKILL');
      await second.done;
      // nothing changed on the table but the triggers, which kept the shadow in step meanwhile
      expect(await sc.columnType()).toBe('int(11)');
      expect((await sc.triggers()).length).toBe(3);
      const third = await runFerry(['local', 'online-alter', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all']);
      await writer.stop();
      expect(third.code, third.stderr).toBe(0);
      expect(await sc.columnType()).toBe('bigint(20) unsigned');
      expect(await csmFingerprint(sc.conn, sc.db, CSM)).toEqual(await csmFingerprint(sc.conn, sc.db, 'reference'));
    } finally {
      await sc.close();
    }
  });

  it('finishes a swap whose RENAME happened just before a kill, without renaming again', async () => {
    const sc = await alterScenario(600);
    try {
      const file = sc.inputFile();
      const first = startFerry(['local', 'online-alter', '--input', file, '--state-dir', sc.stateDir]);
      await first.waitFor(/waiting for approval "cutover"/);
      first.child.kill('SIGKILL');
      await first.done;
      // the state a kill between the RENAME and its checkpoint leaves behind
      await sc.conn.query(`RENAME TABLE \`${sc.db}\`.${CSM} TO \`${sc.db}\`._${CSM}_old, \`${sc.db}\`._${CSM}_new TO \`${sc.db}\`.${CSM}`);
      const run = await runFerry(['local', 'online-alter', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all']);
      expect(run.code, run.stderr).toBe(0);
      expect(run.last).toMatchObject({ phase: 'done', swapAttempts: 0 });
      expect(await sc.columnType()).toBe('bigint(20) unsigned');
      expect(await sc.triggers()).toEqual([]);
      expect(await sc.tables()).toEqual(['_ferry_checkpoints', CSM, 'reference']);
      expect(await csmFingerprint(sc.conn, sc.db, CSM)).toEqual(await csmFingerprint(sc.conn, sc.db, 'reference'));
    } finally {
      await sc.close();
    }
  });

  it('retries the swap while another session holds a lock on the table, and the table serves meanwhile', async () => {
    const sc = await alterScenario(500);
    let blocker: mysql.Connection | undefined;
    try {
      const running = startFerry(['local', 'online-alter', '--input', sc.inputFile(), '--state-dir', sc.stateDir, '--approve', 'cleanup']);
      await running.waitFor(/waiting for approval "cutover"/);
      blocker = await admin();
      await blocker.query('START TRANSACTION');
      await blocker.query(`SELECT * FROM \`${sc.db}\`.${CSM} WHERE id = 1 FOR UPDATE`);
      expect((await runFerry(['approve', sc.migrationId, '--step', 'cutover', '--state-dir', sc.stateDir])).code).toBe(0);
      await running.waitFor(/swap attempt 2\/20: another session holds a lock/);
      // the wait names the transaction that holds the table, so an operator can find it
      const [[{ thread }]] = (await blocker.query('SELECT CONNECTION_ID() AS thread')) as unknown as [[{ thread: string }]];
      expect(running.stderr()).toMatch(new RegExp(`swap attempt \\d+/20: another session holds a lock on courseware_studentmodule \\(waited 1 s\\); open longer than that: (.*; )?thread ${thread} \\(root@`));
      // the original table is in place and serving while the swap waits
      expect(await sc.columnType()).toBe('int(11)');
      await blocker.query('COMMIT');
      const run = await running.done;
      expect(run.code, run.stderr).toBe(0);
      expect(Number(run.last!.swapAttempts)).toBeGreaterThanOrEqual(3);
      expect(await sc.columnType()).toBe('bigint(20) unsigned');
      expect(await csmFingerprint(sc.conn, sc.db, CSM)).toEqual(await csmFingerprint(sc.conn, sc.db, 'reference'));
    } finally {
      await blocker?.end();
      await sc.close();
    }
  });

  it('a rejected cut-over drops the triggers and the shadow and leaves the table as it was', async () => {
    const sc = await alterScenario(800);
    try {
      const before = await csmFingerprint(sc.conn, sc.db, CSM);
      const file = sc.inputFile();
      const running = startFerry(['local', 'online-alter', '--input', file, '--state-dir', sc.stateDir]);
      await running.waitFor(/waiting for approval "cutover"/);
      expect((await sc.tables())).toContain(`_${CSM}_new`);
      const stats = await runFerry(['stats', '--input', file]);
      expect(stats.code, stats.stderr).toBe(0);
      const shown = JSON.parse(stats.stdout);
      expect(shown).toMatchObject({ table: { idType: 'int(11)', rows: before.rows }, shadow: { exists: true, idType: 'bigint(20) unsigned', rows: before.rows }, checkpoint: { phase: 'cutover-approval' } });
      expect((await runFerry(['approve', sc.migrationId, '--step', 'cutover', '--reject', '--reason', 'term starts', '--state-dir', sc.stateDir])).code).toBe(0);
      const run = await running.done;
      expect(run.code).toBe(1);
      expect(run.last).toMatchObject({ error: 'ApprovalRejected', cause: expect.stringContaining('term starts') });
      expect(await sc.tables()).toEqual(['_ferry_checkpoints', CSM, 'reference']);
      expect(await sc.triggers()).toEqual([]);
      expect(await sc.columnType()).toBe('int(11)');
      expect(await csmFingerprint(sc.conn, sc.db, CSM)).toEqual(before);
      expect(await checkpointPhase(sc)).toBeNull();
    } finally {
      await sc.close();
    }
  });
});

describe('ferry local online-alter refuses with exit 2 and leaves the table as it was', () => {
  async function expectRefused(prepare: (sc: AlterScenario) => Promise<Record<string, unknown>>, message: RegExp) {
    const sc = await alterScenario(50);
    try {
      const overrides = await prepare(sc);
      const tablesBefore = await sc.tables();
      const triggersBefore = await sc.triggers();
      const run = await runFerry(['local', 'online-alter', '--input', sc.inputFile(overrides), '--state-dir', sc.stateDir, '--approve', 'all']);
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).toMatch(message);
      expect(await sc.tables()).toEqual(tablesBefore);
      expect(await sc.triggers()).toEqual(triggersBefore);
      expect(await sc.columnType()).toBe('int(11)');
    } finally {
      await sc.close();
    }
  }

  it('a foreign key pointing at the table, named with the fix', () =>
    expectRefused(async (sc) => {
      await sc.conn.query(`CREATE TABLE \`${sc.db}\`.history (id int PRIMARY KEY, student_module_id int, CONSTRAINT fk_csm FOREIGN KEY (student_module_id) REFERENCES \`${sc.db}\`.${CSM} (id))`);
      return {};
    }, /foreign keys point at courseware_studentmodule.*fk_csm on .*history\(student_module_id\).*DROP FOREIGN KEY `fk_csm`/));

  it('an ALTER the database rejects, with its own error, and no scratch table left', () =>
    expectRefused(async () => ({ alter: 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT, ADD COLUM oops int' }), /alter: the database refused it on a copy of up to 2000 of the table's rows: Unknown data type: 'oops' \(error \d+\)/));

  it('a trigger of the table whose definer ferry cannot write back into SQL', () =>
    expectRefused(async (sc) => {
      await sc.conn.query(`CREATE DEFINER = \`o'brien\`@\`localhost\` TRIGGER \`${sc.db}\`.audit AFTER UPDATE ON \`${sc.db}\`.${CSM} FOR EACH ROW SET @x = 1`);
      return {};
    }, /table\.table: trigger audit has definer "o'brien@localhost", which ferry does not write into SQL/));

  it('an ALTER that narrows the id below the ids the table holds', () => expectRefused(async () => ({ alter: 'MODIFY id tinyint NOT NULL AUTO_INCREMENT' }), /alter: (leaves id unable to hold|the database refused it)/));

  it('an ALTER clause that tries a second statement', () => expectRefused(async () => ({ alter: 'MODIFY id bigint; DROP TABLE reference' }), /alter: must be one clause/));
});
