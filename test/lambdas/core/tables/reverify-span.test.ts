import { describe, expect, it } from 'vitest';
import { lookAgain } from '../../../../lambdas/core/tables/reverify-span.ts';
import { checksumRange } from '../../../../lambdas/core/tables/verifier.ts';
import { besideApplication, localCopyTables } from '../../../helpers/lock-scenes.ts';
import { testDatabase } from '../../../helpers/test-database.ts';

/**
 * table-copy's re-verification repairs a span that a writer of the old table changed after it was
 * verified, while an application transaction writes rows of that span one after another, high then
 * low: the repair must never wait for the first row holding the second, or InnoDB fails the
 * application's transaction, the one holding fewer locks.
 */
describe('lookAgain beside an application transaction', () => {
  const td = testDatabase('rvs');

  it("writes the span again from the old table without failing the application's second write", async () => {
    const shape = '(id int NOT NULL PRIMARY KEY, v int NOT NULL)';
    await td.conn.query(`CREATE TABLE \`${td.db}\`.old ${shape}; CREATE TABLE \`${td.db}\`.new ${shape}`);
    await td.conn.query(`INSERT INTO \`${td.db}\`.old SELECT seq, seq FROM \`${td.db}\`.seq_1_to_100; INSERT INTO \`${td.db}\`.new SELECT * FROM \`${td.db}\`.old`);
    const t = await localCopyTables(td, 'old', 'new');
    const conn = t.source;
    const verified = await checksumRange(conn, t.targetTable, 'id', t.hash.target, { lo: '1', hi: '100' });
    const span = { lo: '1', hi: '100', rows: verified.rowCount, checksum: verified.checksum, holes: [], settled: true };
    // a writer still on the old table changed a row after the span was verified: the span needs its repair
    await td.conn.query(`UPDATE \`${td.db}\`.old SET v = -5 WHERE id = 5`);

    const { app, ferry } = await besideApplication(
      [`UPDATE \`${td.db}\`.old SET v = v + 1000 WHERE id = 50`],
      () => lookAgain(t, span),
      `UPDATE \`${td.db}\`.old SET v = v + 1000 WHERE id = 10`,
    );
    expect(app).toBeNull();
    expect(ferry).toMatchObject({ kind: 'repaired', rows: '100' });
    // the new table is the old one as the repair read it: row 5's change is in, and the application's own, committed after, may be
    const [five] = await td.conn.query(`SELECT v FROM \`${td.db}\`.new WHERE id = 5`);
    expect((five as { v: number }[])[0]!.v).toBe(-5);
  });
});
