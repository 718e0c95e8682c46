import mysql from 'mysql2/promise';
import { MYSQL_URL } from './db.ts';

/** One statement an application sent: what it was, when it started (ms since the epoch), how long it took, and its error if it failed. */
export interface AppOp {
  readonly op: string;
  readonly startedAt: number;
  readonly millis: number;
  readonly params: readonly unknown[];
  /** The id an INSERT was given. */
  readonly insertId?: string;
  readonly error?: { readonly errno: number | null; readonly message: string };
}

export interface AppStatement {
  readonly op: string;
  readonly sql: string;
  readonly params: readonly unknown[];
}

export interface AppWriter {
  /** Every statement so far, in order. */
  readonly ops: readonly AppOp[];
  /** Stops after the statement under way; resolves with every statement sent. */
  stop(): Promise<AppOp[]>;
}

/** Sends one statement and records it in `ops`, with its time, its insert id or its error; false when it failed. */
async function sendRecorded(conn: mysql.Connection, s: AppStatement, ops: AppOp[]): Promise<boolean> {
  const startedAt = performance.timeOrigin + performance.now();
  const millis = () => performance.timeOrigin + performance.now() - startedAt;
  try {
    const [result] = await conn.query(s.sql, s.params as unknown[]);
    const insertId = (result as { insertId?: number | string }).insertId;
    ops.push({ op: s.op, startedAt, millis: millis(), params: s.params, ...(insertId ? { insertId: String(insertId) } : {}) });
    return true;
  } catch (err) {
    const e = err as { errno?: number; message: string };
    ops.push({ op: s.op, startedAt, millis: millis(), params: s.params, error: { errno: e.errno ?? null, message: e.message } });
    return false;
  }
}

/**
 * An application writing the way a web application does: one single-row statement at a time with
 * autocommit, a pause between them, and no retry of any kind: a deadlock or a lock wait timeout is
 * an error the application's user would see. `next(i)` gives the i-th statement.
 */
export function startAppWriter(next: (i: number) => AppStatement | null, opts: { url?: string; pauseMillis?: number } = {}): AppWriter {
  return writerLoop(async (conn, i, ops) => {
    const s = next(i);
    if (s) await sendRecorded(conn, s, ops);
  }, opts);
}

/** Runs `step(conn, i, ops)` for i = 0, 1, … on a connection of its own, pausing `pauseMillis` after each, until stopped. */
function writerLoop(step: (conn: mysql.Connection, i: number, ops: AppOp[]) => Promise<void>, opts: { url?: string; pauseMillis?: number }): AppWriter {
  const ops: AppOp[] = [];
  let running = true;
  const loop = (async () => {
    const conn = await mysql.createConnection({ uri: opts.url ?? MYSQL_URL, supportBigNumbers: true, bigNumberStrings: true });
    try {
      for (let i = 0; running; i++) {
        await step(conn, i, ops);
        await new Promise((r) => setTimeout(r, opts.pauseMillis ?? 10));
      }
    } finally {
      await conn.end().catch(() => undefined);
    }
  })();
  return {
    ops,
    stop: async () => {
      running = false;
      await loop;
      return ops;
    },
  };
}

/** The statements that failed, as `op: message (errno)` lines, for an assertion message. */
export function failures(ops: readonly AppOp[]): string[] {
  return ops.filter((o) => o.error).map((o) => `${new Date(o.startedAt).toISOString()} ${o.op}: ${o.error!.message} (${o.error!.errno})`);
}

export interface LatencySummary {
  readonly statements: number;
  readonly errors: number;
  readonly medianMillis: number | null;
  readonly p99Millis: number | null;
  readonly maxMillis: number | null;
}

/** Median, 99th percentile and maximum latency, and errors, of the statements that started in [from, to). */
export function latency(ops: readonly AppOp[], from = -Infinity, to = Infinity): LatencySummary {
  const inside = ops.filter((o) => o.startedAt >= from && o.startedAt < to);
  const sorted = inside.map((o) => o.millis).sort((a, b) => a - b);
  const at = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]! : null);
  return { statements: inside.length, errors: inside.filter((o) => o.error).length, medianMillis: at(0.5), p99Millis: at(0.99), maxMillis: sorted.length ? sorted[sorted.length - 1]! : null };
}

const stamp = (i: number) => `2025-06-01 00:00:00.${String(i % 1_000_000).padStart(6, '0')}`;

/**
 * courseware_studentmodule's application: inserts a new row, updates a random row's state, grade
 * and modified time, and deletes a random row, in turn (ids drawn from 1 … `maxId`; one that is
 * gone already changes nothing). Values are given, never taken from the server's clock, so
 * `replayStudentModuleWrites` can play the same writes on a copy.
 */
export function studentModuleWrites(db: string, table: string, maxId: number): (i: number) => AppStatement {
  const t = `\`${db}\`.\`${table}\``;
  return (i) => {
    const id = 1 + Math.floor(Math.random() * maxId);
    switch (i % 3) {
      case 0:
        return { op: 'insert', sql: `INSERT INTO ${t} (module_id, student_id, state, created, modified, course_id) VALUES (?, ?, 'new', ?, ?, 'course-v1:live')`, params: [`live-${process.pid}-${i}`, 5_000_000 + i, stamp(i), stamp(i)] };
      case 1:
        return { op: 'update', sql: `UPDATE ${t} SET state = ?, grade = ?, modified = ? WHERE id = ?`, params: [`updated ${i}`, i % 100, stamp(i), id] };
      default:
        return { op: 'delete', sql: `DELETE FROM ${t} WHERE id = ?`, params: [id] };
    }
  };
}

/**
 * Writer k of `writers` writing at once: studentModuleWrites' statements, each writer inserting rows
 * of its own and updating and deleting only ids ≡ k (mod writers), so every row's writes come from
 * one writer, in order, and replaying the writers one after the other gives what they did together.
 */
export function studentModuleWriter(db: string, table: string, maxId: number, k: number, writers: number): (i: number) => AppStatement {
  const base = studentModuleWrites(db, table, maxId);
  return (i) => {
    const s = base(i * writers + k);
    if (s.op === 'insert') return s;
    const id = Number(s.params[s.params.length - 1]);
    // never above maxId: the rows there are the writers' own inserts, any writer's
    const mine = id - (id % writers) + k;
    return { ...s, params: [...s.params.slice(0, -1), mine > maxId ? mine - writers : mine] };
  };
}

/** Plays the writes that succeeded, in order, on another table (inserts with the ids they were given; commits are passed over). */
export async function replayStudentModuleWrites(conn: mysql.Connection, db: string, table: string, ops: readonly AppOp[]): Promise<void> {
  const t = `\`${db}\`.\`${table}\``;
  for (const o of ops) {
    if (o.error) continue;
    if (o.op === 'insert') await conn.query(`INSERT INTO ${t} (id, module_id, student_id, state, created, modified, course_id) VALUES (?, ?, ?, 'new', ?, ?, 'course-v1:live')`, [o.insertId, ...o.params]);
    else if (o.op === 'update') await conn.query(`UPDATE ${t} SET state = ?, grade = ?, modified = ? WHERE id = ?`, o.params as unknown[]);
    else if (o.op === 'delete') await conn.query(`DELETE FROM ${t} WHERE id = ?`, o.params as unknown[]);
  }
}

/**
 * An application writing in transactions of several statements (`START TRANSACTION; …; COMMIT`),
 * with no retry, pausing `pauseMillis` between transactions: `next(i)` gives the i-th transaction's
 * statements. Every statement is recorded as an AppOp, COMMIT too (op `commit`); one that fails is
 * recorded with its error, and the transaction is rolled back.
 */
export function startTransactionWriter(next: (i: number) => AppStatement[], opts: { url?: string; pauseMillis?: number } = {}): AppWriter {
  return writerLoop(async (conn, i, ops) => {
    await conn.query('START TRANSACTION');
    for (const s of [...next(i), { op: 'commit', sql: 'COMMIT', params: [] }]) {
      if (await sendRecorded(conn, s, ops)) continue;
      await conn.query('ROLLBACK');
      return;
    }
  }, opts);
}
