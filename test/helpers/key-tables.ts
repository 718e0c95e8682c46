import { randomInt, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterEach, expect } from 'vitest';
import { failures, startAppWriter, type AppOp, type AppStatement } from './app-writer.ts';
import { runFerry, startFerry, tempDir, writeJson } from './cli.ts';
import { admin, makeDatabases, MYSQL_URL, OTHER_HOST_URL } from './db.ts';

/** A key shape: its columns, how a key is written (placeholders) and read back as text, and how a fresh key is made. */
export interface Shape {
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
export const SHAPES: Record<string, Shape> = {
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
export async function contents(conn: mysql.Connection, db: string, shape: Shape): Promise<string[]> {
  const [rows] = await conn.query(`SELECT CONCAT_WS('|', ${shape.read.join(', ')}, v, n) AS r FROM \`${db}\`.t`);
  return (rows as { r: string }[]).map((r) => r.r).sort();
}

export const lineOf = (key: readonly string[], v: string, n: number) => [...key, v, String(n)].join('|');

/**
 * The table-copy tests of tables keyed by anything else than one integer column: `setUp(shape, rows)`
 * makes a source table of that shape seeded with `rows` fresh keys (`expected` holds them as
 * `contents` lines), an empty target of the same shape, a state dir and an input. Call inside a
 * describe: what a test set up is dropped after it.
 */
export function keyTables() {
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

  return setUp;
}

export type KeyTable = Awaited<ReturnType<ReturnType<typeof keyTables>>>;

/**
 * Moves a table keyed by the shape `name` (6,000 rows) with `partitions` copy partitions, on one
 * server or two, while the application inserts rows with keys anywhere into the old table until it
 * has seen the copy flags, then inserts, updates and deletes rows of its own in the new one, and a
 * late server inserts into the old table while the trickle-delete runs. At the end the new table
 * must hold exactly every row ever written to the old one and the application's own rows as it
 * left them.
 */
export async function moveUnderApplication(setUp: ReturnType<typeof keyTables>, name: string, servers: 'one server' | 'two servers', partitions: number): Promise<void> {
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
}

/** A copy of a (varchar, int)-keyed table run up to the cleanup approval, and a key inside its first delivered span. */
export async function upToCleanup(setUp: ReturnType<typeof keyTables>) {
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
