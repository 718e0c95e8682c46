import { describe, expect, it } from 'vitest';
import { runFerry, startFerry } from '../helpers/cli.ts';
import { contents, keyTables, SHAPES, upToCleanup } from '../helpers/key-tables.ts';

/** table-copy of a table keyed by anything else than one integer column (see table-copy-keys.e2e.test.ts): the cut-over and the cleanup refused, the plan, and the inputs refused. */
describe('ferry local table-copy of a table keyed by a composite, string or binary key: what it refuses', () => {
  const setUp = keyTables();

  it('refuses the cut-over while a row of the old table changed after it was delivered, naming it; once made right, it goes on', async () => {
    const shape = SHAPES['composite (varchar, int)']!;
    const t = await setUp(shape, 3000);
    const file = t.input({ reverify: { everySeconds: 1 }, cleanup: { mode: 'none' } });
    const migrationId = `k-${t.src.slice(-12)}`;
    const run = startFerry(['local', 'table-copy', '--input', file, '--state-dir', t.stateDir]);
    await run.waitFor(/re-verification: verified 0 minutes ago, \d+ ranges, 0 differences/);
    const [[row]] = (await t.conn.query(`SELECT name, seq FROM \`${t.src}\`.t ORDER BY name, seq LIMIT 1 OFFSET 1500`)) as unknown as [{ name: string; seq: number }[]];
    await t.conn.query(`UPDATE \`${t.src}\`.t SET v = 'changed in the old table' WHERE name = ? AND seq = ?`, [row!.name, row!.seq]);
    // and a row written late into the same range is copied, not a difference
    await t.conn.query(`INSERT INTO \`${t.src}\`.t (name, seq, v, n) VALUES (?, 1000, 'late', 0)`, [row!.name]);
    await run.waitFor(/re-verification: keys \(name, seq\) .*: 1 rows of t changed after they were delivered/);
    await run.waitFor(/re-verification: verified 0 minutes ago, \d+ ranges, 1 difference\b/);
    expect((await runFerry(['approve', migrationId, '--step', 'cutover', '--state-dir', t.stateDir])).code).toBe(0);
    const failed = await run.done;
    expect(failed.code).toBe(1);
    expect(failed.last).toMatchObject({ status: 'FAILED', error: 'VerificationFailed', cause: expect.stringMatching(/the cut-over flags were not set: .*changed after they were delivered/) });
    expect(t.flags()[`/ferry/${migrationId}/flags/READ_NEW`]).toBeUndefined();
    const [[late]] = (await t.conn.query(`SELECT v FROM \`${t.tgt}\`.t WHERE name = ? AND seq = 1000`, [row!.name])) as unknown as [{ v: string }[]];
    expect(late?.v).toBe('late');

    // a person makes the new table's row right; the run asks again and goes on
    await t.conn.query(`UPDATE \`${t.tgt}\`.t SET v = 'changed in the old table' WHERE name = ? AND seq = ?`, [row!.name, row!.seq]);
    const again = await runFerry(['local', 'table-copy', '--input', file, '--state-dir', t.stateDir, '--approve', 'all']);
    expect(again.code, again.stderr.slice(-3000)).toBe(0);
    expect(t.flags()[`/ferry/${migrationId}/flags/READ_NEW`]).toBe('true');
    expect(await contents(t.conn, t.tgt, shape)).toEqual(await contents(t.conn, t.src, shape));
  }, 300_000);

  it.each([
    ['a late row under a key the application already gave a row of its own in the new table', 'collision'],
    ['a late row beside a delivered row the application deleted from the new table, the late row also written there', 'resurrect'],
  ])('after the cut-over, %s stops the run naming the span; nothing is copied back or lost, and the run goes on once it is moved by hand', async (_, kind) => {
    const { shape, t, file, run, row, approve } = await upToCleanup(setUp);
    const src = `\`${t.src}\`.t`;
    const tgt = `\`${t.tgt}\`.t`;
    if (kind === 'collision') {
      await t.conn.query(`INSERT INTO ${tgt} (name, seq, v, n) VALUES (?, 1000, 'the application''s own', 0)`, [row.name]);
      await t.conn.query(`INSERT INTO ${src} (name, seq, v, n) VALUES (?, 1000, 'late', 0)`, [row.name]);
    } else {
      await t.conn.query(`DELETE FROM ${tgt} WHERE name = ? AND seq = ?`, [row.name, row.seq]);
      for (const table of [tgt, src]) await t.conn.query(`INSERT INTO ${table} (name, seq, v, n) VALUES (?, 1000, 'written to both', 0)`, [row.name]);
    }
    const targetBefore = await contents(t.conn, t.tgt, shape);
    await approve();
    const failed = await run.done;
    expect(failed.code, failed.stderr.slice(-2000)).toBe(1);
    expect(failed.last).toMatchObject({ error: 'VerificationFailed', cause: expect.stringMatching(/keys \(name, seq\) .* cannot be told apart .*No row was copied or deleted/) });
    // nothing of the application's undone, and the late row still in the old table
    expect(await contents(t.conn, t.tgt, shape)).toEqual(targetBefore);
    const [late] = await t.conn.query(`SELECT v FROM ${src} WHERE name = ? AND seq = 1000`, [row.name]);
    expect((late as { v: string }[]).map((r) => r.v)).toEqual([kind === 'collision' ? 'late' : 'written to both']);

    // as the message says: the late row moved by hand (here: another key), then removed from the old table
    if (kind === 'collision') await t.conn.query(`INSERT INTO ${tgt} (name, seq, v, n) VALUES (?, 1001, 'late', 0)`, [row.name]);
    await t.conn.query(`DELETE FROM ${src} WHERE name = ? AND seq = 1000`, [row.name]);
    const again = await runFerry(['local', 'table-copy', '--input', file, '--state-dir', t.stateDir, '--approve', 'all']);
    expect(again.code, again.stderr.slice(-2000)).toBe(0);
    const target = await contents(t.conn, t.tgt, shape);
    expect(target.some((r) => r.startsWith(`${row.name}|${row.seq}|`)), 'the row the application deleted stays deleted').toBe(kind === 'collision');
    expect(target.length).toBe(targetBefore.length + (kind === 'collision' ? 1 : 0));
    expect(await contents(t.conn, t.src, shape)).toEqual([]);
  }, 300_000);

  it('a row of the old table changed during the catch-up refuses the cut-over even when the approval is given at once', async () => {
    const shape = SHAPES['composite (varchar, int)']!;
    const t = await setUp(shape, 3000);
    const file = t.input({ cleanup: { mode: 'none' }, catchUp: { quietSeconds: 4, pollSeconds: 1 } });
    const run = startFerry(['local', 'table-copy', '--input', file, '--state-dir', t.stateDir, '--approve', 'all']);
    await run.waitFor(/\[catch-up\]/);
    const [[row]] = (await t.conn.query(`SELECT name, seq FROM \`${t.src}\`.t ORDER BY name, seq LIMIT 1 OFFSET 1500`)) as unknown as [{ name: string; seq: number }[]];
    await t.conn.query(`UPDATE \`${t.src}\`.t SET v = 'changed in the old table' WHERE name = ? AND seq = ?`, [row!.name, row!.seq]);
    const failed = await run.done;
    expect(failed.code, failed.stderr.slice(-2000)).toBe(1);
    expect(failed.last).toMatchObject({ error: 'VerificationFailed', cause: expect.stringMatching(/the cut-over flags were not set: .*changed after they were delivered/) });
  }, 300_000);

  it('plans such a copy: ferry plan names the key and what a key that does not grow costs, and writes nothing', async () => {
    const t = await setUp(SHAPES['composite (varchar, int)']!, 500);
    const run = await runFerry(['plan', 'table-copy', '--input', t.input({ partitions: 2 }), '--state-dir', t.stateDir]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/keys \(name, seq\) \[.*\] … \[.*\]: chunks of rows in key order/);
    expect(run.stdout).toMatch(/warning: t is copied by its key \(name, seq\), whose values need not grow/);
    expect(run.stdout).toMatch(/deleted a span of the key ledger at a time/);
    const [tables] = await t.conn.query(`SELECT TABLE_NAME AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?`, [t.tgt]);
    expect((tables as { n: string }[]).map((r) => r.n)).toEqual(['t']);
  });

  it('refuses "truncate" for such a key, naming the field, and writes nothing', async () => {
    const t = await setUp(SHAPES['CHAR(36) UUID']!, 50);
    for (const [overrides, field] of [[{ cleanup: { mode: 'truncate' } }, /cleanup\.mode: .*"truncate" .*key \(id\)/]] as const) {
      const run = await runFerry(['local', 'table-copy', '--input', t.input(overrides), '--state-dir', t.stateDir, '--approve', 'all']);
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).toMatch(field);
    }
    const [tables] = await t.conn.query(`SELECT TABLE_NAME AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?`, [t.tgt]);
    expect((tables as { n: string }[]).map((r) => r.n)).toEqual(['t']);
  });

  it('refuses a target whose key differs from the source\'s, naming both', async () => {
    const t = await setUp(SHAPES['composite (varchar, int)']!, 50);
    await t.conn.query(`ALTER TABLE \`${t.tgt}\`.t MODIFY name varchar(40) COLLATE utf8mb4_bin NOT NULL`);
    const run = await runFerry(['local', 'table-copy', '--input', t.input(), '--state-dir', t.stateDir, '--approve', 'all']);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/target\.table: .*\(name, seq\)/);
  });
});
