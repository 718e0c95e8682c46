import { describe, expect, it } from 'vitest';
import { runFerry, startFerry } from '../helpers/cli.ts';
import { MYSQL_URL, OTHER_HOST_URL } from '../helpers/db.ts';
import { contents, keyTables, SHAPES } from '../helpers/key-tables.ts';

/** table-copy of a table keyed by anything else than one integer column (see table-copy-keys.e2e.test.ts), reverted after the cut-over. */
describe('ferry local table-copy of a table keyed by a composite, string or binary key, reverted', () => {
  const setUp = keyTables();

  it.each([
    ['CHAR(36) UUID', 'one server', ['ffffffff-ffff-4fff-8fff-ffffffffffff']],
    ['composite (varchar, int)', 'two servers', ['zzzz-last', '1']],
  ] as const)('reverts a table keyed by %s (%s): the old table holds what the application inserted, updated and deleted in the new one; a run after it goes on to the end', async (name, servers, highest) => {
    const shape = SHAPES[name]!;
    const t = await setUp(shape, 3000);
    const env = servers === 'two servers' ? { FERRY_MYSQL_EDXAPP: MYSQL_URL, FERRY_MYSQL_CSMH: OTHER_HOST_URL } : {};
    const tgt = `\`${t.tgt}\`.t`;
    const running = startFerry(['local', 'table-copy', '--input', t.input(), '--state-dir', t.stateDir, '--approve', 'cutover'], env);
    await running.waitFor(/waiting for approval "cleanup"/, 120_000);
    // the application, in the new table alone: rows with keys anywhere (one above every key copied), rows copied changed and deleted
    const where = shape.names.map((c, i) => `${c} = ${shape.write[i]}`).join(' AND ');
    const insert = `INSERT INTO ${tgt} (${shape.names.join(', ')}, v, n) VALUES (${[...shape.write, '?', '?'].join(', ')})`;
    for (const key of [[...highest], ...Array.from({ length: 40 }, () => shape.fresh())]) await t.conn.query(`${insert} ON DUPLICATE KEY UPDATE v = 'dup'`, [...key, 'app-new', 1]);
    const seeded = [...t.expected.keys()].map((k) => k.split('|'));
    for (const key of seeded.slice(0, 20)) await t.conn.query(`UPDATE ${tgt} SET v = 'app-updated' WHERE ${where}`, key);
    for (const key of seeded.slice(20, 30)) await t.conn.query(`DELETE FROM ${tgt} WHERE ${where}`, key);
    const inNew = await contents(t.conn, t.tgt, shape);
    expect(inNew.length).toBe(3000 + 41 - 10);

    const taken = await runFerry(['revert', `k-${t.src.slice(-12)}`, '--reason', 'slow', '--state-dir', t.stateDir], env);
    expect(taken.code, taken.stderr).toBe(0);
    const run = await running.done;
    expect(run.code, run.stderr.slice(-3000)).toBe(0);
    expect(run.last).toMatchObject({ outcome: 'reverted', reverted: { rowsCarried: 41 + 20 + 10 } });
    expect(await contents(t.conn, t.src, shape), 'the old table holds what the new one holds').toEqual(inNew);
    expect(t.flags()[`/ferry/k-${t.src.slice(-12)}/flags/READ_NEW`]).toBeUndefined();

    // the same input later: the cut-over asked for again, then the cleanup, to the end; the new table as the application left it
    const retry = await runFerry(['local', 'table-copy', '--input', t.input(), '--state-dir', t.stateDir, '--approve', 'all'], env);
    expect(retry.code, retry.stderr.slice(-3000)).toBe(0);
    expect(retry.last).toMatchObject({ phase: 'done' });
    expect(await contents(t.conn, t.tgt, shape)).toEqual(inNew);
    expect(await contents(t.conn, t.src, shape)).toEqual([]);
  }, 300_000);
});
