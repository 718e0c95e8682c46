import { randomInt, randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { runFerry, startFerry, writeJson, tempDir } from '../helpers/cli.ts';
import { failures, startAppWriter, type AppOp, type AppStatement } from '../helpers/app-writer.ts';
import { admin, makeDatabases, MYSQL_URL, OTHER_HOST_URL } from '../helpers/db.ts';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';

/** A key shape: its columns, how a key is written (placeholders) and read back as text, and how a fresh key is made. */
interface Shape {
  readonly columns: string;
  readonly key: string;
  readonly names: readonly string[];
  /** One placeholder expression per key column, for an INSERT. */
  readonly write: readonly string[];
  /** One expression per key column reading it as the text `fresh` gave. */
  readonly read: readonly string[];
  fresh(): string[];
}

const micros = () => String(randomInt(0, 1_000_000)).padStart(6, '0');
const SHAPES: Record<string, Shape> = {
  'composite (int, datetime(6))': {
    columns: 'k int NOT NULL, at datetime(6) NOT NULL',
    key: '(k, at)',
    names: ['k', 'at'],
    write: ['?', '?'],
    read: ['k', "DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s.%f')"],
    fresh: () => [String(randomInt(1, 4000)), `2026-0${randomInt(1, 10)}-1${randomInt(0, 10)} 12:0${randomInt(0, 10)}:00.${micros()}`],
  },
  'CHAR(36) UUID': {
    columns: 'id char(36) CHARACTER SET ascii NOT NULL',
    key: '(id)',
    names: ['id'],
    write: ['?'],
    read: ['id'],
    fresh: () => [randomUUID()],
  },
  'BINARY(16)': {
    columns: 'id binary(16) NOT NULL',
    key: '(id)',
    names: ['id'],
    write: ['UNHEX(?)'],
    read: ['HEX(id)'],
    fresh: () => [randomUUID().replaceAll('-', '').toUpperCase()],
  },
  'composite (varchar, int)': {
    columns: 'name varchar(40) COLLATE utf8mb4_unicode_ci NOT NULL, seq int NOT NULL',
    key: '(name, seq)',
    names: ['name', 'seq'],
    write: ['?', '?'],
    read: ['name', 'seq'],
    fresh: () => [`user-${randomInt(0, 300)}-${randomUUID().slice(0, 4)}`, String(randomInt(-50, 50))],
  },
};

/** What a table holds, as `key parts|v|n` lines, sorted. */
async function contents(conn: mysql.Connection, db: string, shape: Shape): Promise<string[]> {
  const [rows] = await conn.query(`SELECT CONCAT_WS('|', ${shape.read.join(', ')}, v, n) AS r FROM \`${db}\`.t`);
  return (rows as { r: string }[]).map((r) => r.r).sort();
}

const lineOf = (key: readonly string[], v: string, n: number) => [...key, v, String(n)].join('|');

/**
 * table-copy of a table keyed by anything else than one integer column: the copy, the catch-up, the
 * verification, the sweep and the trickle-delete go by the key's ranges. The application inserts
 * rows with keys anywhere in the table (inside ranges already copied) into the old table until it
 * has seen the copy flags, then inserts, updates and deletes rows of its own in the new one; a late
 * server inserts into the old table while the trickle-delete runs. At the end the new table holds
 * exactly every row ever written to the old one and the application's own rows as it left them.
 */
describe('ferry local table-copy of a table keyed by a composite, string or binary key', () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
  });

  async function setUp(shape: Shape, rows: number) {
    const conn = await admin();
    const dbs = await makeDatabases(conn, 'edxapp', 'csmh');
    closers.push(async () => {
      await dbs.drop();
      await conn.end();
    });
    const src = dbs.names.edxapp!;
    const tgt = dbs.names.csmh!;
    for (const db of [src, tgt]) await conn.query(`CREATE TABLE \`${db}\`.t (${shape.columns}, v varchar(64) NOT NULL, n int NOT NULL, PRIMARY KEY ${shape.key}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
    const expected = new Map<string, string>();
    const values: unknown[] = [];
    for (let i = 0; i < rows; i++) {
      const key = shape.fresh();
      const id = key.join('|');
      if (expected.has(id)) continue;
      expected.set(id, lineOf(key, `seed-${i}`, i));
      values.push(...key, `seed-${i}`, i);
    }
    const tuple = `(${[...shape.write, '?', '?'].join(', ')})`;
    const perRow = shape.write.length + 2;
    for (let i = 0; i < values.length; i += 500 * perRow) {
      const part = values.slice(i, i + 500 * perRow);
      await conn.query(`INSERT INTO \`${src}\`.t (${shape.names.join(', ')}, v, n) VALUES ${Array(part.length / perRow).fill(tuple).join(', ')}`, part);
    }
    const dir = tempDir();
    const stateDir = join(dir, 'state');
    const input = (overrides: Record<string, unknown> = {}) =>
      writeJson(dir, `input-${randomUUID().slice(0, 6)}.json`, {
        migrationId: `k-${src.slice(-12)}`,
        source: { connection: 'edxapp', database: src, table: 't' },
        target: { connection: 'csmh', database: tgt, table: 't' },
        catchUp: { quietSeconds: 2, pollSeconds: 1 },
        chunk: { targetMillis: 200, minRows: 50, maxRows: 2000 },
        throttle: { maxThreadsRunning: 200, waitSeconds: 1 },
        flags: { copy: { WRITE_NEW: 'true' }, cutover: { READ_NEW: 'true' } },
        cleanup: { mode: 'trickle-delete', batchRows: 500 },
        ...overrides,
      });
    const flags = (): Record<string, string> => {
      try {
        return JSON.parse(readFileSync(join(stateDir, 'flags.json'), 'utf8'));
      } catch {
        return {};
      }
    };
    return { conn, src, tgt, stateDir, input, flags, expected };
  }

  const cases = [
    ...Object.keys(SHAPES).map((name) => [name, 'one server', 1] as const),
    ['CHAR(36) UUID', 'two servers', 1] as const,
    ['composite (int, datetime(6))', 'two servers', 1] as const,
    ['BINARY(16)', 'one server', 3] as const,
    ['composite (varchar, int)', 'two servers', 4] as const,
  ];

  it.each(cases)('moves a table keyed by %s (%s, %i partitions), with the application writing both tables throughout', async (name, servers, partitions) => {
    const shape = SHAPES[name]!;
    const t = await setUp(shape, 6000);
    const env = servers === 'two servers' ? { FERRY_MYSQL_EDXAPP: MYSQL_URL, FERRY_MYSQL_CSMH: OTHER_HOST_URL } : {};
    const src = `\`${t.src}\`.t`;
    const tgt = `\`${t.tgt}\`.t`;
    const insert = (table: string, key: string[], v: string, n: number): AppStatement => ({ op: table === src ? 'insert-old' : 'insert-new', sql: `INSERT INTO ${table} (${shape.names.join(', ')}, v, n) VALUES (${[...shape.write, '?', '?'].join(', ')})`, params: [...key, v, n] });
    const where = shape.names.map((c, i) => `${c} = ${shape.write[i]}`).join(' AND ');
    // Statements are planned here and their effect on the reference applied once they succeed (see settle).
    const planned = new Map<number, () => void>();
    const own: string[][] = [];
    let flagsSeenAt: number | null = null;
    const writesNew = () => {
      if (flagsSeenAt === null && t.flags()['/ferry/' + `k-${t.src.slice(-12)}` + '/flags/WRITE_NEW'] === 'true') flagsSeenAt = Date.now();
      return flagsSeenAt !== null && Date.now() - flagsSeenAt > 2000;
    };
    const app = startAppWriter((i): AppStatement => {
      if (!writesNew()) {
        const key = shape.fresh();
        planned.set(i, () => t.expected.set(key.join('|'), lineOf(key, `old-${i}`, i)));
        return insert(src, key, `old-${i}`, i);
      }
      const mine = own[own.length - 1];
      if (i % 3 === 1 && mine) {
        planned.set(i, () => t.expected.set(mine.join('|'), lineOf(mine, `new-updated-${i}`, i)));
        return { op: 'update-new', sql: `UPDATE ${tgt} SET v = ?, n = ? WHERE ${where}`, params: [`new-updated-${i}`, i, ...mine] };
      }
      if (i % 3 === 2 && mine) {
        own.pop();
        planned.set(i, () => t.expected.delete(mine.join('|')));
        return { op: 'delete-new', sql: `DELETE FROM ${tgt} WHERE ${where}`, params: mine };
      }
      const key = shape.fresh();
      own.push(key);
      planned.set(i, () => t.expected.set(key.join('|'), lineOf(key, `new-${i}`, i)));
      return insert(tgt, key, `new-${i}`, i);
    }, { pauseMillis: 5 });
    const running = startFerry(['local', 'table-copy', '--input', t.input({ partitions }), '--state-dir', t.stateDir, '--approve', 'all'], env);
    // a late server, still on the old flags, inserting into the old table once the cleanup has begun
    let late: AppOp[] = [];
    const lateKeys = new Map<number, string[]>();
    const lateServer = (async () => {
      for (;;) {
        const [rows] = await t.conn.query(`SELECT phase FROM \`${t.tgt}\`._ferry_checkpoints`).catch(() => [[]] as never);
        const phase = (rows as { phase: string }[])[0]?.phase;
        if (phase === 'cleanup' || phase === 'done' || running.child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      if (running.child.exitCode !== null) return;
      const w = startAppWriter((i) => {
        const key = shape.fresh();
        lateKeys.set(i, key);
        return insert(src, key, `late-${i}`, i);
      });
      await new Promise((r) => setTimeout(r, 1500));
      late = await w.stop();
    })();
    const result = await running.done;
    await lateServer;
    const ops = await app.stop();
    ops.forEach((o, i) => {
      if (!o.error) planned.get(i)?.();
    });
    expect(failures(ops), 'the application saw no error').toEqual([]);
    expect(result.code, result.stderr.slice(-3000)).toBe(0);
    expect(ops.filter((o) => o.op === 'insert-old').length, 'the application wrote the old table during the run').toBeGreaterThan(20);
    expect(ops.filter((o) => o.op === 'delete-new').length, 'and changed the new one').toBeGreaterThan(5);
    // the late server's rows that landed before the source was emptied are in the target; any after were left in the source
    const leftInSource = new Set(await contents(t.conn, t.src, shape));
    late.forEach((o, i) => {
      const key = lateKeys.get(i)!;
      const line = lineOf(key, `late-${i}`, i);
      if (!o.error && !leftInSource.has(line)) t.expected.set(key.join('|'), line);
    });
    const target = await contents(t.conn, t.tgt, shape);
    const want = [...t.expected.values()].sort();
    const missing = want.filter((r) => !target.includes(r));
    const extra = target.filter((r) => !want.includes(r));
    expect({ missing: missing.slice(0, 5), extra: extra.slice(0, 5), rows: target.length }).toEqual({ missing: [], extra: [], rows: want.length });
    expect(result.last).toMatchObject({ phase: 'done' });
    // the initial copy ran as that many partitions, each its own chunk loop
    if (partitions > 1) expect(Number(/CopyPartition (\d+)/.exec(result.stderr)?.[1])).toBeGreaterThanOrEqual(partitions);
  }, 400_000);

  it('survives SIGKILLs at any moment (two servers, the copy in 2 partitions): each run resumes from the checkpoint, and no row is lost', async () => {
    const shape = SHAPES['CHAR(36) UUID']!;
    const t = await setUp(shape, 20000);
    const env = { FERRY_MYSQL_EDXAPP: MYSQL_URL, FERRY_MYSQL_CSMH: OTHER_HOST_URL };
    const file = t.input({ chunk: { targetMillis: 20, minRows: 50, maxRows: 150 }, partitions: 2 });
    const src = `\`${t.src}\`.t`;
    const phaseNow = async () => {
      const [rows] = await t.conn.query(`SELECT phase FROM \`${t.tgt}\`._ferry_checkpoints`).catch(() => [[]] as never);
      return (rows as { phase: string }[])[0]?.phase ?? null;
    };
    let phase: string | null = null;
    let cleanupSeenAt: number | null = null;
    const watching = setInterval(() => {
      void phaseNow().then((p) => {
        phase = p;
        if (p === 'cleanup' && cleanupSeenAt === null) cleanupSeenAt = Date.now();
      });
    }, 30);
    // a server writing the old table, with keys anywhere, while the copy runs (rows land in ranges already copied) and for
    // two seconds of the cleanup (after the cut-over: late rows), through the kills
    const writer = startAppWriter((i): AppStatement | null => {
      if (phase !== 'copy' && !(cleanupSeenAt !== null && Date.now() - cleanupSeenAt < 2000)) return null;
      return { op: 'insert-old', sql: `INSERT INTO ${src} (id, v, n) VALUES (?, ?, ?)`, params: [...shape.fresh(), `old-${i}`, i] };
    }, { pauseMillis: 20 });
    // one run killed in each of these phases, at a random moment of it
    const killedIn: string[] = [];
    for (const target of ['copy', 'catch-up', 'verify', 'sweep', 'cleanup', 'cleanup']) {
      const run = startFerry(['local', 'table-copy', '--input', file, '--state-dir', t.stateDir, '--approve', 'all'], env);
      const order = ['prepare', 'copy', 'catch-up', 'verify', 'cutover-approval', 'sweep', 'cleanup-approval', 'cleanup', 'done'];
      while (run.child.exitCode === null && order.indexOf((await phaseNow()) ?? 'prepare') < order.indexOf(target)) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, randomInt(0, 600)));
      if (run.child.exitCode !== null) break;
      killedIn.push((await phaseNow())!);
      run.child.kill('SIGKILL');
      expect((await run.done).signal).toBe('SIGKILL');
    }
    clearInterval(watching);
    const ops = await writer.stop();
    for (const o of ops) {
      const [id, v, n] = o.params as [string, string, number];
      if (!o.error) t.expected.set(id, lineOf([id], v, n));
    }
    const last = await runFerry(['local', 'table-copy', '--input', file, '--state-dir', t.stateDir, '--approve', 'all'], env);
    expect(last.code, last.stderr.slice(-3000)).toBe(0);
    expect(new Set(killedIn).size, `killed in ${killedIn.join(', ')}`).toBeGreaterThanOrEqual(3);
    expect(ops.filter((o) => o.op === 'insert-old').length).toBeGreaterThan(20);
    expect(failures(ops)).toEqual([]);
    const target = await contents(t.conn, t.tgt, shape);
    const want = [...t.expected.values()].sort();
    expect({ missing: want.filter((r) => !target.includes(r)).slice(0, 5), extra: target.filter((r) => !want.includes(r)).slice(0, 5), rows: target.length }).toEqual({ missing: [], extra: [], rows: want.length });
    expect(await contents(t.conn, t.src, shape)).toEqual([]);
  }, 400_000);

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

  /** A copy of a (varchar, int)-keyed table run up to the cleanup approval, and a key inside its first delivered span. */
  async function upToCleanup() {
    const shape = SHAPES['composite (varchar, int)']!;
    const t = await setUp(shape, 3000);
    const file = t.input();
    const migrationId = `k-${t.src.slice(-12)}`;
    const run = startFerry(['local', 'table-copy', '--input', file, '--state-dir', t.stateDir, '--approve', 'cutover']);
    await run.waitFor(/waiting for approval "cleanup"/);
    const [[row]] = (await t.conn.query(`SELECT name, seq, v, n FROM \`${t.src}\`.t ORDER BY name, seq LIMIT 1 OFFSET 5`)) as unknown as [{ name: string; seq: number; v: string; n: number }[]];
    const approve = async () => expect((await runFerry(['approve', migrationId, '--step', 'cleanup', '--state-dir', t.stateDir])).code).toBe(0);
    return { shape, t, file, run, row: row!, approve };
  }

  it.each([
    ['a late row under a key the application already gave a row of its own in the new table', 'collision'],
    ['a late row beside a delivered row the application deleted from the new table, the late row also written there', 'resurrect'],
  ])('after the cut-over, %s stops the run naming the span; nothing is copied back or lost, and the run goes on once it is moved by hand', async (_, kind) => {
    const { shape, t, file, run, row, approve } = await upToCleanup();
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

  it('a run stopped after it deleted a span from the old table, before it recorded so, resumes and delivers a row written there since', async () => {
    const { shape, t, file, run, row } = await upToCleanup();
    run.child.kill('SIGKILL');
    await run.done;
    // What a SIGKILL between the delete's commit and the span's record leaves: the span marked as being deleted, its rows gone.
    const [[span]] = (await t.conn.query(`SELECT seq, lo, hi FROM \`${t.tgt}\`._ferry_key_ledger ORDER BY seq LIMIT 1`)) as unknown as [{ seq: number; lo: string | null; hi: string }[]];
    const [hiName, hiSeq] = JSON.parse(span!.hi) as [string, string];
    await t.conn.query(`UPDATE \`${t.tgt}\`._ferry_key_ledger SET deleting = 1 WHERE seq = ?`, [span!.seq]);
    const [gone] = await t.conn.query(`DELETE FROM \`${t.src}\`.t WHERE (name, seq) <= (?, ?)`, [hiName, Number(hiSeq)]);
    expect((gone as { affectedRows: number }).affectedRows).toBeGreaterThan(5);
    await t.conn.query(`INSERT INTO \`${t.src}\`.t (name, seq, v, n) VALUES (?, 1000, 'late', 0)`, [row.name]);
    const again = await runFerry(['local', 'table-copy', '--input', file, '--state-dir', t.stateDir, '--approve', 'all']);
    expect(again.code, again.stderr.slice(-2000)).toBe(0);
    expect((await contents(t.conn, t.tgt, shape)).filter((r) => r.startsWith(`${row.name}|1000|`))).toEqual([`${row.name}|1000|late|0`]);
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

  it('refuses a target whose key differs from the source\'s, naming both', async () => {
    const t = await setUp(SHAPES['composite (varchar, int)']!, 50);
    await t.conn.query(`ALTER TABLE \`${t.tgt}\`.t MODIFY name varchar(40) COLLATE utf8mb4_bin NOT NULL`);
    const run = await runFerry(['local', 'table-copy', '--input', t.input(), '--state-dir', t.stateDir, '--approve', 'all']);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/target\.table: .*\(name, seq\)/);
  });
});
