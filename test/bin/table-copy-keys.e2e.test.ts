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
        throttle: { maxThreadsRunning: 1000, waitSeconds: 1 },
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
    ...Object.keys(SHAPES).map((name) => [name, 'one server'] as const),
    ['CHAR(36) UUID', 'two servers'] as const,
    ['composite (int, datetime(6))', 'two servers'] as const,
  ];

  it.each(cases)('moves a table keyed by %s (%s), with the application writing both tables throughout', async (name, servers) => {
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
    const running = startFerry(['local', 'table-copy', '--input', t.input(), '--state-dir', t.stateDir, '--approve', 'all'], env);
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
    if (process.env.SHOW) console.log(result.stderr, JSON.stringify(result.last));
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
  }, 400_000);

  it('refuses "truncate" and "partitions" for such a key, naming the field, and writes nothing', async () => {
    const t = await setUp(SHAPES['CHAR(36) UUID']!, 50);
    for (const [overrides, field] of [
      [{ cleanup: { mode: 'truncate' } }, /cleanup\.mode: .*"truncate" .*key \(id\)/],
      [{ partitions: 2 }, /partitions: .*key \(id\)/],
    ] as const) {
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
