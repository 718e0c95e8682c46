import { describe, expect, it } from 'vitest';
import { startFerry } from '../helpers/cli.ts';
import { startAppWriter, studentModuleWriter } from '../helpers/app-writer.ts';
import { CSM, tableContent } from '../helpers/alter-scenario.ts';
import { windowNames } from '../../lambdas/core/tables/shadow.ts';
import { askRevert as revert, cutOver, endCutOver, expectEveryWriteAfterRevert, expectReverted, MAX_ID } from '../helpers/alter-revert.ts';

/** `writers` application writers inserting, updating and deleting single rows (autocommit, no retry), rows of their own each. */
const writing = (writers: number) => (sc: { db: string }) => Array.from({ length: writers }, (_, k) => startAppWriter(studentModuleWriter(sc.db, CSM, MAX_ID, k, writers), { pauseMillis: 3 }));


describe('ferry revert of an online-alter waiting for its cleanup approval', () => {
  it("refuses while a row cannot go back into the original shape, with nothing flipped; then carries every write back and swaps the original table back, failing none of the application's writes", async () => {
    const c = await cutOver(writing(2), 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT, MODIFY student_id bigint NOT NULL');
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
      // the revert took its own triggers back; the revert window's are on the table again, so the writes since are logged for the next revert
      const w = windowNames(sc.migrationId, { database: sc.db, table: CSM });
      expect((await sc.triggers()).sort(), "the revert window's triggers, no other").toEqual([w.delete, w.insert, w.update].sort());
      expect(running.child.exitCode).toBeNull();

      await sc.conn.query(`DELETE FROM \`${sc.db}\`.${CSM} WHERE id = ?`, [bigId]);
      const taken = await revert(c);
      expect(taken.code, taken.stderr).toBe(0);
      const run = await running.done;
      expectReverted(run);
      expect(run.stderr).toMatch(/reverting/);
      // the application writes the original table again for a while
      await expectEveryWriteAfterRevert(c, 1000);
    } finally {
      await endCutOver(c);
    }
  }, 420_000);

  it('finishes a revert killed (SIGKILL) while it compares the whole tables (no revert window) when the same command runs again; then the same input alters the table again, to the end', async () => {
    const c = await cutOver(writing(1), 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT', { revertWindow: false });
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
      await expectEveryWriteAfterRevert(c, 500);

      // after a revert the same input starts again from what is there, and alters the table
      const again = await startFerry([...c.args.slice(0, -1), 'all']).done;
      expect(again.code, again.stderr).toBe(0);
      expect(again.last, again.stdout).toMatchObject({ phase: 'done' });
      expect(await sc.columnType()).toBe('bigint(20) unsigned');
      const [table, reference] = [await tableContent(sc.conn, sc.db, CSM), await tableContent(sc.conn, sc.db, 'reference')];
      expect({ rows: table.rows, checksum: table.checksum }).toEqual({ rows: reference.rows, checksum: reference.checksum });
    } finally {
      await endCutOver(c);
    }
  }, 480_000);
});
