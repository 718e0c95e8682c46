import { describe, expect, it } from 'vitest';
import { runFerry, startFerry } from '../helpers/cli.ts';
import { alterScenario, csmFingerprint, CSM, tableSchema } from '../helpers/alter-scenario.ts';

/** online-alter's re-verification beside the pending cut-over approval (lambdas/online-alter/reverify.ts). */
describe('online-alter re-verifies while the cut-over approval waits', () => {
  it('writes again, from the table, a row of the altered copy that went wrong while it waited, so the swap brings no stale row', async () => {
    const sc = await alterScenario(3000);
    try {
      const run = startFerry(['local', 'online-alter', '--input', sc.inputFile({ reverify: { everySeconds: 1 } }), '--state-dir', sc.stateDir]);
      await run.waitFor(/waiting for approval "cutover"/);
      await run.waitFor(/re-verification: verified 0 minutes ago, \d+ ranges, 0 differences/);
      // a row of the altered copy changed behind the triggers' back (a hand edit, a write they missed)
      await sc.conn.query(`UPDATE \`${sc.db}\`.\`_${CSM}_new\` SET grade = 99, state = 'stale' WHERE id = 1234`);
      await run.waitFor(/re-verification: ids \d+\.\.\d+ of _courseware_studentmodule_new differed from courseware_studentmodule and were written again from it/);
      await run.waitFor(/re-verification: verified 0 minutes ago, \d+ ranges, 0 differences \(1 repaired\)/);
      expect((await runFerry(['approve', sc.migrationId, '--step', 'cutover', '--state-dir', sc.stateDir])).code).toBe(0);
      await run.waitFor(/waiting for approval "cleanup"/);
      expect((await runFerry(['approve', sc.migrationId, '--step', 'cleanup', '--state-dir', sc.stateDir])).code).toBe(0);
      const done = await run.done;
      expect(done.code, done.stderr).toBe(0);
      expect(await sc.columnType()).toBe('bigint(20) unsigned');
      expect(await csmFingerprint(sc.conn, sc.db, CSM)).toEqual(await csmFingerprint(sc.conn, sc.db, 'reference'));
    } finally {
      await sc.close();
    }
  });

  it('looks above the table’s highest id too: a row of the altered copy there, which the table does not have, is taken out before the swap', async () => {
    const sc = await alterScenario(2000);
    try {
      const run = startFerry(['local', 'online-alter', '--input', sc.inputFile({ reverify: { everySeconds: 1 }, cleanup: { mode: 'drop' } }), '--state-dir', sc.stateDir]);
      await run.waitFor(/re-verification: verified 0 minutes ago, \d+ ranges, 0 differences/);
      const [top] = await sc.conn.query(`SELECT MAX(id) AS m FROM \`${sc.db}\`.${CSM}`);
      const stray = Number((top as { m: number }[])[0]!.m) + 1000;
      await sc.conn.query(`INSERT INTO \`${sc.db}\`.\`_${CSM}_new\` (id, module_id, student_id, created, modified, course_id) VALUES (?, 'stray', 777777, NOW(), NOW(), 'c')`, [stray]);
      await run.waitFor(new RegExp(`re-verification: ids \\d+\\.\\.${stray} of _courseware_studentmodule_new differed from courseware_studentmodule and were written again from it`));
      expect((await runFerry(['approve', sc.migrationId, '--step', 'cutover', '--state-dir', sc.stateDir])).code).toBe(0);
      await run.waitFor(/waiting for approval "cleanup"/);
      expect((await runFerry(['approve', sc.migrationId, '--step', 'cleanup', '--state-dir', sc.stateDir])).code).toBe(0);
      const done = await run.done;
      expect(done.code, done.stderr).toBe(0);
      expect(await csmFingerprint(sc.conn, sc.db, CSM)).toEqual(await csmFingerprint(sc.conn, sc.db, 'reference'));
    } finally {
      await sc.close();
    }
  });

  it.each([
    ['ADD UNIQUE KEY one_module_per_student (student_id)', 'ids \\d+\\.\\.\\d+'],
    // copied by the composite key (id, student_id): its ranges start after a key, which the record of a difference keeps
    ['DROP PRIMARY KEY, ADD PRIMARY KEY (id, student_id), ADD UNIQUE KEY one_module_per_student (student_id)', 'keys \\(id, student_id\\) (after \\S+ )?up to \\["\\d+","\\d+"\\]'],
  ])('names a clash with a new unique key made while it waited (%s), and the swap is refused with the table as it was and the triggers taken back', async (alter, range) => {
    const sc = await alterScenario(2000);
    try {
      const before = await tableSchema(sc.conn, sc.db, CSM);
      const file = sc.inputFile({ alter, allowNewUniqueKeys: true, cleanup: { mode: 'drop' }, reverify: { everySeconds: 1 } });
      const running = startFerry(['local', 'online-alter', '--input', file, '--state-dir', sc.stateDir, '--approve', 'cleanup'], { FERRY_LOCAL_RETRY_MILLIS: '50' });
      await running.waitFor(/re-verification: verified 0 minutes ago, \d+ ranges, 0 differences/);
      await sc.conn.query(`UPDATE \`${sc.db}\`.${CSM} SET student_id = 4 WHERE id = 3`);
      await running.waitFor(new RegExp(`re-verification: ${range} of courseware_studentmodule cannot be written to _courseware_studentmodule_new: Duplicate entry '4' for key 'one_module_per_student'`));
      await running.waitFor(/re-verification: verified 0 minutes ago, \d+ ranges, 1 difference\b/);
      expect((await runFerry(['approve', sc.migrationId, '--step', 'cutover', '--state-dir', sc.stateDir])).code).toBe(0);
      const run = await running.done;
      expect(run.code, run.stderr).toBe(1);
      expect(run.last).toMatchObject({ error: 'VerificationFailed', cause: expect.stringMatching(/the swap was not made: .*Duplicate entry '4' for key 'one_module_per_student'/) });
      expect(await tableSchema(sc.conn, sc.db, CSM)).toBe(before);
      expect(await sc.triggers()).toEqual([]);
      const [rows] = await sc.conn.query(`SELECT id FROM \`${sc.db}\`.${CSM} WHERE student_id = 4 ORDER BY id`);
      expect(rows).toEqual([{ id: 3 }, { id: 4 }]);
    } finally {
      await sc.close();
    }
  });
});
