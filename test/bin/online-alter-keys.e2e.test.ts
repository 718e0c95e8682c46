import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterEach, describe, expect, it } from 'vitest';
import { applicationTransaction, tableSchema } from '../helpers/alter-scenario.ts';
import { runFerry, tempDir, writeJson } from '../helpers/cli.ts';
import { admin, makeDatabases } from '../helpers/db.ts';

/**
 * online-alter of tables whose key is not one integer column: a composite key, a UUID as text or
 * as bytes, a case- and accent-insensitive text key, an ENUM whose order is not its labels', and an
 * ALTER that leaves only a composite key shared by both shapes (gh-ost's shared-uk). With the
 * application inserting, updating and deleting rows meanwhile, the result must be exactly what a
 * plain ALTER of the same data gives, rows and schema, with no trigger left behind. A table with
 * no unique key ferry can go by (a nullable or a FLOAT column in it, or one enforced by a HASH index) is refused before anything is
 * written, naming the keys it has.
 */

/** Every table has its key columns, and `payload` and `score`, the non-key columns the application updates. */
interface KeyCase {
  readonly name: string;
  readonly table: string;
  /** CREATE TABLE for the qualified name `t`; `reference` is made LIKE it. */
  readonly create: (t: string) => string;
  /** Fills `t` with about 3000 rows, a gap or two in the key; `seq(n)` is the sequence 1 … n. */
  readonly seed: (t: string, seq: (n: number) => string) => string[];
  /** The key's columns, after the ALTER as before: rows are addressed and ordered by them. */
  readonly key: readonly string[];
  /** The i-th row the application inserts: a key no row had before, by construction. */
  readonly newRow: (i: number) => Record<string, unknown>;
  readonly alter: string;
}

const payload = "IF(seq % 7 = 0, NULL, CONCAT('p', seq))";
const ADD_NOTE = "ADD COLUMN note varchar(20) NOT NULL DEFAULT 'x'";

/** A datetime(6) no seeded row has: the i-th microsecond of 2030. */
const stamp2030 = (i: number) => `2030-01-01 00:${String(Math.floor(i / 60e6) % 60).padStart(2, '0')}:${String(Math.floor(i / 1e6) % 60).padStart(2, '0')}.${String(i % 1e6).padStart(6, '0')}`;
/** `user<k>` spelled five ways that utf8mb4_unicode_ci holds equal: case, an accent, a trailing space. */
const userName = (k: number, variant: number) => [`user${k}`, `USER${k}`, `User${k}`, `Üser${k}`, `user${k} `][variant % 5]!;

const CASES: KeyCase[] = [
  {
    // several rows to an id
    name: 'PRIMARY KEY (id int, ts datetime(6))',
    table: 'by_id_ts',
    create: (t) => `CREATE TABLE ${t} (id int NOT NULL, ts datetime(6) NOT NULL, payload varchar(100) NULL, score int NOT NULL DEFAULT 0, PRIMARY KEY (id, ts))`,
    // three rows to an id, their times out of step with their order; ids 501 … 899 missing
    seed: (t, seq) => [
      `INSERT INTO ${t} (id, ts, payload, score) SELECT seq DIV 3 + IF(seq DIV 3 > 500, 400, 0), TIMESTAMP('2024-01-01') + INTERVAL ((seq * 7919 % 100000) * 1000 + 1) MICROSECOND, ${payload}, seq FROM ${seq(3000)}`,
    ],
    key: ['id', 'ts'],
    // among the existing ids (a new time), so new rows land everywhere in the key's range
    newRow: (i) => ({ id: i % 1400, ts: stamp2030(i), payload: `new ${i}`, score: i }),
    alter: ADD_NOTE,
  },
  {
    // utf8mb4 in its default collation, some UUIDs in upper case
    name: 'a CHAR(36) UUID primary key',
    table: 'by_uuid',
    create: (t) => `CREATE TABLE ${t} (uuid char(36) NOT NULL PRIMARY KEY, payload varchar(100) NULL, score int NOT NULL DEFAULT 0) DEFAULT CHARSET=utf8mb4`,
    // UUID() counts up its first group: the rows made between the 1200th and the 1400th leave a gap
    seed: (t, seq) => [
      `INSERT INTO ${t} (uuid, payload, score) SELECT IF(seq % 5 = 0, UPPER(UUID()), UUID()), ${payload}, seq FROM ${seq(3200)}`,
      `DELETE FROM ${t} WHERE score BETWEEN 1200 AND 1400`,
    ],
    key: ['uuid'],
    newRow: (i) => ({ uuid: i % 4 === 0 ? randomUUID().toUpperCase() : randomUUID(), payload: `new ${i}`, score: i }),
    alter: 'MODIFY payload varchar(200) NULL',
  },
  {
    // in random order: bytes of UUID() and of MD5, all-zero and all-0xFF among them
    name: 'a BINARY(16) primary key',
    table: 'by_bytes',
    create: (t) => `CREATE TABLE ${t} (id binary(16) NOT NULL PRIMARY KEY, payload varchar(100) NULL, score int NOT NULL DEFAULT 0)`,
    seed: (t, seq) => [
      `INSERT INTO ${t} (id, payload, score) SELECT IF(seq % 2, UNHEX(REPLACE(UUID(), '-', '')), UNHEX(MD5(seq))), ${payload}, seq FROM ${seq(3200)}`,
      `INSERT INTO ${t} (id, payload, score) VALUES (UNHEX(REPEAT('00', 16)), 'zero', 1), (UNHEX(REPEAT('FF', 16)), 'ff', 2), (UNHEX(REPEAT('20', 16)), 'spaces', 3), (UNHEX(CONCAT('61', REPEAT('00', 15))), 'a and NULs', 4)`,
      // a gap among the MD5 ones (UUID()'s, made within a millisecond, share their first bytes)
      `DELETE FROM ${t} WHERE id BETWEEN UNHEX(CONCAT('40', REPEAT('00', 15))) AND UNHEX(CONCAT('5F', REPEAT('FF', 15))) AND score % 2 = 0`,
    ],
    key: ['id'],
    newRow: (i) => ({ id: randomBytes(16), payload: `new ${i}`, score: i }),
    alter: ADD_NOTE,
  },
  {
    // under utf8mb4_unicode_ci, names that are equal but for case, an accent or a trailing space, each with other n
    name: 'PRIMARY KEY (name varchar(40), n int)',
    table: 'by_name_n',
    create: (t) => `CREATE TABLE ${t} (name varchar(40) NOT NULL, n int NOT NULL, payload varchar(100) NULL, score int NOT NULL DEFAULT 0, PRIMARY KEY (name, n)) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`,
    // user100 … user149 missing; each name spelled five ways, in turn, across its rows
    seed: (t, seq) => [
      `INSERT INTO ${t} (name, n, payload, score) SELECT ELT(1 + (seq DIV 300) % 5, CONCAT('user', seq % 300), CONCAT('USER', seq % 300), CONCAT('User', seq % 300), CONCAT('Üser', seq % 300), CONCAT('user', seq % 300, ' ')), seq, ${payload}, seq FROM ${seq(3600)} WHERE seq % 300 NOT BETWEEN 100 AND 149`,
    ],
    key: ['name', 'n'],
    newRow: (i) => ({ name: userName(i % 300, Math.floor(i / 3)), n: 100_000 + i, payload: `new ${i}`, score: i }),
    alter: 'MODIFY score bigint NOT NULL DEFAULT 0',
  },
  {
    // the ENUM's order is not its labels'
    name: 'PRIMARY KEY (id int, kind enum)',
    table: 'by_id_kind',
    create: (t) => `CREATE TABLE ${t} (id int NOT NULL, kind enum('b','a','c') NOT NULL, payload varchar(100) NULL, score int NOT NULL DEFAULT 0, PRIMARY KEY (id, kind))`,
    // odd ids have b, a and c, even ids b and a; ids 500 … 599 missing
    seed: (t, seq) => [
      `INSERT INTO ${t} (id, kind, payload, score) SELECT s.seq, k.kind, IF(s.seq % 7 = 0, NULL, CONCAT('p', s.seq, k.kind)), s.seq FROM ${seq(1300)} s
        JOIN (SELECT 'b' AS kind UNION ALL SELECT 'a' UNION ALL SELECT 'c') k WHERE s.seq NOT BETWEEN 500 AND 599 AND (s.seq % 2 = 1 OR k.kind <> 'c')`,
    ],
    key: ['id', 'kind'],
    // the c an even id lacks
    newRow: (i) => ({ id: 2 * i, kind: 'c', payload: `new ${i}`, score: i }),
    // a column between the key's two
    alter: `${ADD_NOTE} AFTER id`,
  },
  {
    // gh-ost's shared-uk: the only key both shapes share is (id, i), none is on id alone any more
    name: 'shared-uk: PRIMARY KEY (id) to (id, i)',
    table: 'shared_uk',
    create: (t) => `CREATE TABLE ${t} (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, i int NOT NULL, payload varchar(100) NULL, score int NOT NULL DEFAULT 0)`,
    // even ids, 3002 … 4000 missing
    seed: (t, seq) => [`INSERT INTO ${t} (id, i, payload, score) SELECT seq * 2 + IF(seq > 1500, 1000, 0), seq % 50, ${payload}, seq FROM ${seq(3000)}`],
    // the application never changes id or i; it inserts odd ids, among the even ones
    key: ['id', 'i'],
    newRow: (i) => ({ id: 2 * i + 1, i: i % 50, payload: `new ${i}`, score: i }),
    alter: 'DROP PRIMARY KEY, ADD PRIMARY KEY (id, i)',
  },
];

const q = (name: string) => `\`${name}\``;

/** A database of its own, and an input file for online-alter of `table` in it. */
async function setUp(): Promise<{ conn: mysql.Connection; db: string; drop: () => Promise<void>; stateDir: string; inputFile: (table: string, alter: string) => string }> {
  const conn = await admin();
  const dbs = await makeDatabases(conn, 'keys');
  const db = dbs.names.keys!;
  const dir = tempDir();
  return {
    conn,
    db,
    stateDir: join(dir, 'state'),
    drop: async () => {
      await dbs.drop();
      await conn.end();
    },
    inputFile: (table, alter) =>
      writeJson(dir, `in-${table}.json`, {
        migrationId: `keys-${db.slice(-6)}`,
        table: { connection: 'edxapp', database: db, table },
        alter,
        chunk: { targetMillis: 20, minRows: 50, maxRows: 300 },
        throttle: { maxThreadsRunning: 200, waitSeconds: 1 },
        cutover: { lockWaitSeconds: 1, attempts: 20 },
        cleanup: { mode: 'drop' },
      }),
  };
}

interface WriterCounts {
  inserts: number;
  updates: number;
  deletes: number;
  /** Transactions run again after a deadlock (1213) or "table definition has changed" (1412). */
  retries: number;
  /** Committed statements that changed a different number of rows in the table than in `reference`. */
  mismatches: string[];
}

/**
 * The application: on a connection of its own, 5 ms apart, one transaction at a time that inserts a
 * new row, updates a random row's non-key columns or deletes a random row, in the table and in
 * `reference` alike, the row picked from `reference` and addressed by its whole key.
 */
function startWriter(db: string, c: KeyCase): { stop: () => Promise<WriterCounts> } {
  const counts: WriterCounts = { inserts: 0, updates: 0, deletes: 0, retries: 0, mismatches: [] };
  const tables = [`${q(db)}.${q(c.table)}`, `${q(db)}.reference`];
  const where = c.key.map((k) => `${q(k)} = ?`).join(' AND ');
  let running = true;
  const loop = (async () => {
    const w = await admin();
    try {
      for (let i = 0; running; i++) {
        const op = (['insert', 'update', 'delete'] as const)[i % 3]!;
        const row = c.newRow(i);
        const { done, changed } = await applicationTransaction(w, async () => {
          const changed: number[] = [];
          let done: 'inserts' | 'updates' | 'deletes' | null = null;
          if (op === 'insert') {
            const cols = Object.keys(row);
            for (const t of tables) {
              const [r] = await w.query(`INSERT INTO ${t} (${cols.map(q).join(', ')}) VALUES (?)`, [Object.values(row)]);
              changed.push((r as mysql.ResultSetHeader).affectedRows);
            }
            done = 'inserts';
          } else {
            const [pick] = await w.query(`SELECT ${c.key.map(q).join(', ')} FROM ${tables[1]} ORDER BY RAND() LIMIT 1`);
            const found = (pick as Record<string, unknown>[])[0];
            if (found) {
              const keyValues = c.key.map((k) => found[k]);
              for (const t of tables) {
                const [r] = op === 'update'
                  ? await w.query(`UPDATE ${t} SET payload = ?, score = ? WHERE ${where}`, [`updated ${i}`, i, ...keyValues])
                  : await w.query(`DELETE FROM ${t} WHERE ${where}`, keyValues);
                changed.push((r as mysql.ResultSetHeader).affectedRows);
              }
              done = op === 'update' ? 'updates' : 'deletes';
            }
          }
          return { done, changed };
        }, () => void counts.retries++);
        if (done) counts[done]++;
        if (changed[0] !== changed[1]) counts.mismatches.push(`${op} #${i}: ${changed[0]} row(s) in ${c.table}, ${changed[1]} in reference`);
        await new Promise((r) => setTimeout(r, 5));
      }
    } finally {
      await w.end().catch(() => undefined);
    }
  })();
  // an error of the application's surfaces in stop(), not as an unhandled rejection meanwhile
  loop.catch(() => undefined);
  return {
    stop: async () => {
      running = false;
      await loop;
      return counts;
    },
  };
}

/**
 * Every row, ordered by `key`, every column as the server writes it as text (binary ones in hex),
 * the column names first.
 */
async function content(conn: mysql.Connection, db: string, table: string, key: readonly string[]): Promise<(string | null)[][]> {
  const [cols] = await conn.query('SELECT COLUMN_NAME AS c, DATA_TYPE AS t FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION', [db, table]);
  const columns = cols as { c: string; t: string }[];
  const text = columns.map(({ c, t }) => (/binary|blob/i.test(t) ? `HEX(${q(c)})` : `CAST(${q(c)} AS CHAR CHARACTER SET utf8mb4)`));
  const [rows] = await conn.query({ sql: `SELECT ${text.join(', ')} FROM ${q(db)}.${q(table)} ORDER BY ${key.map(q).join(', ')}`, rowsAsArray: true });
  return [columns.map((x) => x.c), ...(rows as (string | null)[][])];
}

/** Where two contents first differ (row 0 is the column names), or null when they are the same. */
function firstDifference(a: (string | null)[][], b: (string | null)[][]): { row: number; table: unknown; reference: unknown } | null {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (JSON.stringify(a[i]) !== JSON.stringify(b[i])) return { row: i, table: a[i] ?? '(no row)', reference: b[i] ?? '(no row)' };
  }
  return null;
}

async function triggers(conn: mysql.Connection, db: string): Promise<string[]> {
  const [r] = await conn.query('SELECT TRIGGER_NAME AS t FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?', [db]);
  return (r as { t: string }[]).map((x) => x.t);
}

async function tables(conn: mysql.Connection, db: string): Promise<string[]> {
  const [r] = await conn.query('SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?', [db]);
  return (r as { t: string }[]).map((x) => x.t).sort();
}

describe('ferry local online-alter of a table whose key is not one integer column', () => {
  let env: Awaited<ReturnType<typeof setUp>> | undefined;
  afterEach(async () => {
    await env?.drop();
    env = undefined;
  });

  it.each(CASES)('$name: the table ends as a plain ALTER of the same writes leaves it', async (c) => {
    env = await setUp();
    const { conn, db } = env;
    const t = `${q(db)}.${q(c.table)}`;
    await conn.query(c.create(t));
    for (const sql of c.seed(t, (n) => `${q(db)}.seq_1_to_${n}`)) await conn.query(sql);
    await conn.query(`CREATE TABLE ${q(db)}.reference LIKE ${t}`);
    await conn.query(`INSERT INTO ${q(db)}.reference SELECT * FROM ${t}`);
    const [seeded] = await conn.query(`SELECT COUNT(*) AS n FROM ${t}`);
    expect(Number((seeded as { n: string }[])[0]!.n)).toBeGreaterThan(2500);

    const writer = startWriter(db, c);
    const run = await runFerry(['local', 'online-alter', '--input', env.inputFile(c.table, c.alter), '--state-dir', env.stateDir, '--approve', 'all']).finally(() => writer.stop().catch(() => undefined));
    const counts = await writer.stop();
    expect(run.code, run.stderr).toBe(0);
    expect(counts.inserts + counts.updates + counts.deletes, JSON.stringify(counts)).toBeGreaterThan(10);
    expect(counts.mismatches).toEqual([]);
    expect(run.last).toMatchObject({ phase: 'done', copyKey: c.key });

    await conn.query(`ALTER TABLE ${q(db)}.reference ${c.alter}`);
    const [altered, reference] = [await content(conn, db, c.table, c.key), await content(conn, db, 'reference', c.key)];
    expect(await tableSchema(conn, db, c.table)).toBe(await tableSchema(conn, db, 'reference'));
    const diff = firstDifference(altered, reference);
    expect(diff, JSON.stringify(diff)).toBeNull();
    expect(altered.length).toBe(reference.length);
    expect(await triggers(conn, db)).toEqual([]);
    expect(await tables(conn, db)).toEqual(['_ferry_checkpoints', c.table, 'reference'].sort());
  }, 240_000);

  it.each([
    {
      name: 'a nullable column',
      table: 'nullable_key',
      create: (t: string) => `CREATE TABLE ${t} (id int NOT NULL, token int NULL, payload varchar(100) NULL, UNIQUE KEY by_token (id, token))`,
      values: (seq: string) => `SELECT seq, IF(seq % 10 = 0, NULL, seq % 3), CONCAT('p', seq) FROM ${seq}`,
      keys: 'by_token (id, token)',
    },
    {
      name: 'a FLOAT column',
      table: 'float_key',
      create: (t: string) => `CREATE TABLE ${t} (id int NOT NULL, weight float NOT NULL, payload varchar(100) NULL, PRIMARY KEY (id, weight))`,
      values: (seq: string) => `SELECT seq % 40, seq / 7, CONCAT('p', seq) FROM ${seq}`,
      keys: 'PRIMARY (id, weight)',
    },
    {
      // MariaDB enforces a unique key on a column this long with a HASH index, which keeps no order
      name: 'a column too long for a B-tree',
      table: 'long_key',
      create: (t: string) => `CREATE TABLE ${t} (id int NULL, name varchar(1000) NOT NULL, payload varchar(100) NULL, UNIQUE KEY by_name (name)) DEFAULT CHARSET=utf8mb4`,
      values: (seq: string) => `SELECT seq, CONCAT(REPEAT('x', seq % 900), seq), CONCAT('p', seq) FROM ${seq}`,
      keys: 'by_name (name) (a hash index)',
    },
    {
      // rows are read in ascending key order: a descending part would make the server sort the rest of the table for every chunk
      name: 'a descending part',
      table: 'desc_key',
      create: (t: string) => `CREATE TABLE ${t} (id int NOT NULL, n int NOT NULL, payload varchar(100) NULL, PRIMARY KEY (id, n DESC))`,
      values: (seq: string) => `SELECT seq DIV 3, seq, CONCAT('p', seq) FROM ${seq}`,
      keys: 'PRIMARY (id, n) (n descending)',
    },
  ])('refuses a table whose only unique key has $name, naming its keys, and writes nothing', async (c) => {
    env = await setUp();
    const { conn, db } = env;
    const t = `${q(db)}.${q(c.table)}`;
    await conn.query(c.create(t));
    await conn.query(`INSERT INTO ${t} ${c.values(`${q(db)}.seq_1_to_500`)}`);
    const schema = await tableSchema(conn, db, c.table);
    const before = await content(conn, db, c.table, ['id', 'payload']);

    const run = await runFerry(['local', 'online-alter', '--input', env.inputFile(c.table, ADD_NOTE), '--state-dir', env.stateDir, '--approve', 'all']);
    expect(run.code, run.stderr).toBe(2);
    const escaped = c.keys.replace(/[()]/g, '\\$&');
    expect(run.stderr).toMatch(new RegExp(`table\\.table: ${c.table}\\b.*unique key.*${escaped}`));
    // no shadow (_<table>_new), no capture log, no checkpoint table, no trigger: only the table, as it was
    expect(await tables(conn, db)).toEqual([c.table]);
    expect(await triggers(conn, db)).toEqual([]);
    expect(await tableSchema(conn, db, c.table)).toBe(schema);
    const diff = firstDifference(await content(conn, db, c.table, ['id', 'payload']), before);
    expect(diff, JSON.stringify(diff)).toBeNull();
  });

  it('refuses an ALTER whose new primary key adds a column the table lets be NULL: ranges of the key would never hold such a row', async () => {
    env = await setUp();
    const { conn, db } = env;
    const t = `${q(db)}.nullable_extra`;
    await conn.query(`CREATE TABLE ${t} (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, i int NULL, payload varchar(100) NULL)`);
    await conn.query(`INSERT INTO ${t} (id, i, payload) SELECT seq, seq % 50, CONCAT('p', seq) FROM ${q(db)}.seq_1_to_500`);
    const schema = await tableSchema(conn, db, 'nullable_extra');
    const run = await runFerry(['local', 'online-alter', '--input', env.inputFile('nullable_extra', 'DROP PRIMARY KEY, ADD PRIMARY KEY (id, i)'), '--state-dir', env.stateDir, '--approve', 'all']);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/alter: must leave a unique key that starts with the columns of one of nullable_extra's \(PRIMARY \(id\)\), NOT NULL/);
    expect(await tables(conn, db)).toEqual(['nullable_extra']);
    expect(await triggers(conn, db)).toEqual([]);
    expect(await tableSchema(conn, db, 'nullable_extra')).toBe(schema);
  });

  it('refuses a table with a column whose name ferry does not write into SQL, naming it, and writes nothing', async () => {
    env = await setUp();
    const { conn, db } = env;
    await conn.query(`CREATE TABLE ${q(db)}.odd_name (id int NOT NULL, \`a b\` int NOT NULL, payload varchar(100) NULL, PRIMARY KEY (\`a b\`))`);
    const run = await runFerry(['local', 'online-alter', '--input', env.inputFile('odd_name', ADD_NOTE), '--state-dir', env.stateDir, '--approve', 'all']);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/table\.table: column "a b" of odd_name has a name ferry does not write into SQL; rename it/);
    expect(await tables(conn, db)).toEqual(['odd_name']);
  });
});
