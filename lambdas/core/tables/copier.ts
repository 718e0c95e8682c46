import type { SqlConnection, SqlRow } from '../ports/sql.ts';
import { wholeValue, type HashColumn } from '../checksum.ts';
import { ERRNO, LocalInfileRefused, ResultTooLarge, type FerryError } from '../errors.ts';
import { addId, compareIds, fromBig, minId, toBig, type Id, type IdRange } from '../ids.ts';
import { nextChunkSpan } from '../chunker.ts';

/** Ids per `IN (…)` list: keeps statements short. */
export const IDS_PER_STATEMENT = 1000;
import { qualified, quoteIdent, type TableRef } from '../identifiers.ts';
import { loadDataLines, loadDataSql, type LoadCharset } from './load-data.ts';

export interface CopyTables {
  readonly source: SqlConnection;
  readonly target: SqlConnection;
  readonly sourceTable: TableRef;
  readonly targetTable: TableRef;
  readonly idColumn: string;
  /** The source's unique index on `idColumn`, the one the copy reads by (see CopyKey). */
  readonly keyIndex: string;
  /** The source's columns that are copied and compared, in the source's order. */
  readonly columns: readonly string[];
  /** Each of `columns`' name in the target (another where the ALTER renames it; the same for table-copy). */
  readonly targetColumns: readonly string[];
  /** How each side's values go into a row's hash (by each side's column types), in `columns`' order. */
  readonly hash: { readonly source: readonly HashColumn[]; readonly target: readonly HashColumn[] };
  /**
   * Read source rows with `LOCK IN SHARE MODE` (one server only): a writer of those rows waits for
   * the chunk to commit, so a row deleted meanwhile cannot be copied back to life after its
   * trigger already ran. Needed when triggers keep the target in step (online-alter).
   */
  readonly readLock?: boolean;
  /** The target connection is inside a transaction (begun READ COMMITTED where it matters): no isolation change per statement. */
  readonly inTransaction?: boolean;
  /** How rows streamed between servers can go in by LOAD DATA (see load-data.ts); absent or null: INSERTs. */
  readonly loadCharset?: LoadCharset | null;
  /** The run is being stopped: a transaction that gave way to the application is not tried again (see givingWay). */
  readonly stopping?: AbortSignal;
}

export interface CopyResult {
  /** Rows newly written to the target; rows already there are left alone and not counted. */
  readonly inserted: number;
}

/** Both tables on one server: rows never leave it. */
export function sameServer(t: CopyTables): boolean {
  return t.source === t.target || t.source.serverKey === t.target.serverKey;
}

/**
 * Copies one id range, idempotently: `INSERT IGNORE` keeps a row that is already in the target,
 * so a chunk run twice (after a crash, a retry, a verify re-copy) changes nothing the second time.
 * On one server it is `INSERT … SELECT`, in pieces (see inPieces); across servers the rows stream into
 * `LOAD DATA LOCAL INFILE … IGNORE` when the columns allow it (load-data.ts), else they are read in
 * pages and written in multi-row INSERTs bounded by size.
 */
export async function copyRange(t: CopyTables, range: IdRange): Promise<CopyResult> {
  const cols = readList(t);
  const id = quoteIdent(t.idColumn);
  if (sameServer(t)) {
    if (t.inTransaction || !t.target.sessions) return { inserted: await insertSelect(t, `${id} BETWEEN ? AND ?`, [range.lo, range.hi]) };
    return { inserted: await inPieces(t, range, t.readLock ? (piece) => lockedPiece(t, piece) : (piece) => insertSelect(t, `${id} BETWEEN ? AND ?`, [piece.lo, piece.hi])) };
  }
  if (t.loadCharset && !t.inTransaction && t.source.streamQuery && t.target.loadLocal && !NO_LOCAL_INFILE.has(t.target)) {
    // Rows stream from the source's result into the target's LOAD DATA, a buffer at a time.
    const rows = t.source.streamQuery(`SELECT ${cols} FROM ${qualified(t.sourceTable)} WHERE ${id} BETWEEN ? AND ? ORDER BY ${id}`, [range.lo, range.hi])[Symbol.asyncIterator]();
    try {
      return { inserted: (await t.target.loadLocal(loadDataSql(t.targetTable, t.targetColumns, t.loadCharset), loadDataLines({ [Symbol.asyncIterator]: () => rows }, t.columns))).affectedRows };
    } catch (err) {
      if (!(err instanceof LocalInfileRefused)) throw err;
      NO_LOCAL_INFILE.add(t.target);
    } finally {
      // A LOAD that stopped early leaves the source in the middle of its result: that ends its session.
      await rows.return?.();
    }
  }
  // Rows travel through ferry: read in pages the source can return at once, from the lowest id up.
  let inserted = 0;
  let pageRows = t.source.readPageRows;
  let from = range.lo;
  for (;;) {
    let rows: SqlRow[];
    try {
      rows = await t.source.query(`SELECT ${cols} FROM ${qualified(t.sourceTable)} WHERE ${id} BETWEEN ? AND ? ORDER BY ${id} LIMIT ${pageRows}`, [from, range.hi]);
    } catch (err) {
      if (err instanceof ResultTooLarge && pageRows > 1) {
        pageRows = Math.max(1, Math.floor(pageRows / 2));
        continue;
      }
      throw err;
    }
    inserted += await insertRows(t, rows);
    if (rows.length < pageRows) return { inserted };
    const last = rows[rows.length - 1]![t.idColumn];
    from = addId(String(last), 1);
  }
}

/**
 * `INSERT IGNORE … SELECT` on one server. Without `readLock` the source is read as a consistent,
 * non-locking read (READ COMMITTED for this statement): a row whose transaction is still open is
 * not waited for, and is found later among the holes. With it (inside a transaction), see
 * lockedPiece. Returns the rows written.
 */
async function insertSelect(t: CopyTables, where: string, params: readonly unknown[]): Promise<number> {
  const sql = insertSelectSql(t, where);
  if (!t.readLock && !t.inTransaction && t.target.sessions) return insertSelectNotLocking(t.target, sql, params);
  return (await t.target.execute(sql, params)).affectedRows;
}

/**
 * Runs an `INSERT … SELECT` (outside a transaction) whose SELECT reads a live table as a
 * consistent, non-locking read: READ COMMITTED for that statement. In REPEATABLE READ it would
 * share-lock every row it reads, and an application transaction holding one of them that then
 * wants one already read would be failed by InnoDB to end the cycle. Where the binary log is
 * statement-based, which refuses it, the locking read it is. Returns the rows written.
 */
export async function insertSelectNotLocking(conn: SqlConnection, sql: string, params: readonly unknown[] = []): Promise<number> {
  if (conn.sessions && !LOCKING_READS_ONLY.has(conn)) {
    await conn.execute('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
    try {
      return (await conn.execute(sql, params)).affectedRows;
    } catch (err) {
      if ((err as FerryError).errno !== ERRNO.BINLOG_STATEMENT_MODE) throw err;
      LOCKING_READS_ONLY.add(conn);
    }
  }
  return (await conn.execute(sql, params)).affectedRows;
}

function insertSelectSql(t: CopyTables, where: string): string {
  const from = `${qualified(t.sourceTable)}${t.readLock ? ` FORCE INDEX (${quoteIdent(t.keyIndex)})` : ''}`;
  return `INSERT IGNORE INTO ${qualified(t.targetTable)} (${t.targetColumns.map(quoteIdent).join(', ')}) SELECT ${t.columns.map(quoteIdent).join(', ')} FROM ${from} WHERE ${where}${t.readLock ? ' LOCK IN SHARE MODE' : ''}`;
}

/**
 * How long one statement of a copy on one server should take (ms): about the longest an
 * application's insert into the target waits for the copy. An `INSERT … SELECT` holds the target's
 * table-wide AUTO-INC lock until it ends (innodb_autoinc_lock_mode 1, MariaDB's default), and
 * every insert into the target, the application's or its triggers', waits for it.
 */
export const PIECE_MILLIS = 50;

/** The id span of the last piece each connection copied, to start the next chunk's from. */
const pieceSpans = new WeakMap<SqlConnection, number>();

/**
 * Copies a range on one server in pieces of about PIECE_MILLIS each, sized by time as chunks are
 * (a chunk keeps its own size, checkpoint and verification; its pieces only bound how long the
 * copy holds a lock). Returns the rows written.
 */
async function inPieces(t: CopyTables, range: IdRange, copy: (piece: IdRange) => Promise<number>): Promise<number> {
  const settings = { targetMillis: PIECE_MILLIS, minSpan: 1, maxSpan: Number.MAX_SAFE_INTEGER };
  let span = pieceSpans.get(t.target) ?? 100;
  let inserted = 0;
  for (let lo = range.lo; compareIds(lo, range.hi) <= 0; ) {
    const hi = minId(addId(lo, span - 1), range.hi);
    const started = performance.now();
    inserted += await copy({ lo, hi });
    span = nextChunkSpan(span, performance.now() - started, settings);
    lo = addId(hi, 1);
  }
  pieceSpans.set(t.target, span);
  return inserted;
}

/**
 * A piece of a copy that triggers keep in step (online-alter): one transaction that reads the
 * piece's source rows under share locks, in key order (see lockingRange), and writes them to the
 * target as `INSERT IGNORE … VALUES` (see insertRows), which takes no table-wide AUTO-INC lock.
 * Never `INSERT … SELECT`: under innodb_autoinc_lock_mode 1 it holds the target's AUTO-INC lock for
 * the whole statement, and it waited, holding it, for a lock an application's transaction had
 * taken in one of the target's unique indexes through its triggers (deleting a row and inserting
 * its unique value again; deleting the row next to the piece where the ALTER moved the primary
 * key); that transaction's next insert (its trigger's) waited for the AUTO-INC lock, and InnoDB
 * ended the cycle by failing the application's write, the one with fewer rows changed
 * (repair.test.ts). The rows travel through ferry: the copy takes about twice the time.
 */
async function lockedPiece(t: CopyTables, piece: IdRange): Promise<number> {
  const id = quoteIdent(t.idColumn);
  return lockingRange(t.target, piece, async (tx, p, wait) => {
    const rows = await tx.query(`SELECT ${readList(t)} FROM ${qualified(t.sourceTable)} FORCE INDEX (${quoteIdent(t.keyIndex)}) WHERE ${id} BETWEEN ? AND ? ORDER BY ${id} LOCK IN SHARE MODE${wait}`, [p.lo, p.hi]);
    return insertRows({ ...t, target: tx }, rows);
  }, t.stopping);
}

/**
 * Runs `fn` on a range of a live table in one transaction whose first statement share-locks the
 * range's rows, `wait` being what that locking read ends with. Over more than one id it is
 * ` NOWAIT`: when another transaction holds one of the rows, the read fails at once, the
 * transaction is rolled back, and each half of the range is done the same way on its own; a single
 * id waits for its row (see givingWay), holding no other lock. So ferry never waits for an
 * application's lock while it holds one the application may be waiting for: an application
 * transaction that has written one row and then wants another that ferry share-locked (a
 * transaction of several statements) only waits for ferry's transaction to end. Were ferry's read
 * to wait instead, InnoDB would break that cycle by failing the application's transaction, the one
 * holding fewer locks. Returns the sum of what `fn` returned.
 */
export async function lockingRange(
  conn: SqlConnection,
  range: IdRange,
  fn: (tx: SqlConnection, range: IdRange, wait: '' | ' NOWAIT') => Promise<number>,
  stopping?: AbortSignal,
): Promise<number> {
  if (compareIds(range.lo, range.hi) >= 0) return givingWay(conn, (tx) => fn(tx, range, ''), { stopping });
  try {
    return await givingWay(conn, (tx) => fn(tx, range, ' NOWAIT'), { stopping, attempts: 1 });
  } catch (err) {
    const errno = (err as FerryError).errno;
    if (errno !== ERRNO.LOCK_WAIT_TIMEOUT && errno !== ERRNO.DEADLOCK) throw err;
  }
  const mid = fromBig((toBig(range.lo) + toBig(range.hi)) >> 1n);
  return (await lockingRange(conn, { lo: range.lo, hi: mid }, fn, stopping)) + (await lockingRange(conn, { lo: addId(mid, 1), hi: range.hi }, fn, stopping));
}

/**
 * How long ferry's transactions that lock rows of a live table wait for one row lock (seconds)
 * before they give way: roll back, releasing every lock they hold, and try again. An application's
 * write queued behind one of them waits about this long plus that transaction's own time at most,
 * never its own lock wait timeout.
 */
export const GIVE_WAY_SECONDS = 1;
const GIVE_WAY_ATTEMPTS = 30;

/**
 * Runs `fn` in one transaction on `conn` (a session-keeping connection; READ COMMITTED if
 * `readCommitted`) whose row lock waits last at most GIVE_WAY_SECONDS; after a lock wait timeout
 * (a `NOWAIT` read that met a locked row too) or a deadlock (InnoDB chose ferry's transaction as
 * the victim) it is rolled back and run again, after a growing pause, `attempts` times in all, 30
 * unless said (not once `stopping` has fired: the error is thrown, and the work is done again on
 * resuming).
 */
export async function givingWay<T>(
  conn: SqlConnection,
  fn: (tx: SqlConnection) => Promise<T>,
  { stopping, attempts = GIVE_WAY_ATTEMPTS, readCommitted = false }: { stopping?: AbortSignal | undefined; attempts?: number; readCommitted?: boolean } = {},
): Promise<T> {
  await conn.execute(`SET SESSION innodb_lock_wait_timeout = ${GIVE_WAY_SECONDS}`);
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        return await conn.transaction(fn, { readCommitted });
      } catch (err) {
        const errno = (err as FerryError).errno;
        if ((errno !== ERRNO.LOCK_WAIT_TIMEOUT && errno !== ERRNO.DEADLOCK) || attempt >= attempts || stopping?.aborted) throw err;
        await new Promise((r) => setTimeout(r, Math.min(2000, 25 * 2 ** attempt) * (0.5 + Math.random() / 2)));
      }
    }
  } finally {
    await conn.execute('SET SESSION innodb_lock_wait_timeout = DEFAULT').catch(() => undefined);
  }
}

/** The source columns as rows leaving the server are read: every value whole (a FLOAT as its exact DOUBLE), under its own name. */
export function readList(t: CopyTables): string {
  return t.columns.map((c, i) => {
    const h = t.hash.source[i];
    return h?.float && h.name === c ? `${wholeValue(h)} AS ${quoteIdent(c)}` : quoteIdent(c);
  }).join(', ');
}

/** Target connections whose server refused LOAD DATA LOCAL INFILE: their copies are INSERTs. */
const NO_LOCAL_INFILE = new WeakSet<SqlConnection>();

/** Connections whose server logs statements (binlog_format=STATEMENT): their copies read with locks. */
const LOCKING_READS_ONLY = new WeakSet<SqlConnection>();

/**
 * Copies exactly these rows (by id), idempotently, as `copyRange` does a range: rows already in the
 * target are left alone. Ids no longer in the source are skipped. Returns the rows written.
 */
export async function copyIds(t: CopyTables, ids: readonly Id[]): Promise<number> {
  let inserted = 0;
  for (let i = 0; i < ids.length; i += IDS_PER_STATEMENT) {
    const batch = ids.slice(i, i + IDS_PER_STATEMENT);
    const where = `${quoteIdent(t.idColumn)} IN (${batch.map(() => '?').join(', ')})`;
    if (sameServer(t)) {
      inserted += await insertSelect(t, where, batch);
    } else {
      const cols = readList(t);
      inserted += await insertRows(t, await t.source.query(`SELECT ${cols} FROM ${qualified(t.sourceTable)} WHERE ${where}`, batch));
    }
  }
  return inserted;
}

/**
 * Writes rows read from the source (see readList) to the target as multi-row `INSERT IGNORE …
 * VALUES`, each statement as large as the target takes: an insert whose row count is known, so
 * under innodb_autoinc_lock_mode 1 it never holds the target's table-wide AUTO-INC lock while it
 * waits for a row lock. `write` sends each statement (by default on the target's connection) and
 * returns the rows it wrote. Returns the rows written.
 */
export async function insertRows(
  t: CopyTables,
  rows: readonly SqlRow[],
  write: (sql: string, params: unknown[]) => Promise<number> = async (sql, params) => (await t.target.execute(sql, params)).affectedRows,
): Promise<number> {
  const cols = t.targetColumns.map(quoteIdent).join(', ');
  const tuple = `(${t.columns.map(() => '?').join(', ')})`;
  let inserted = 0;
  let batch: unknown[] = [];
  let batchRows = 0;
  let bytes = 0;
  const flush = async () => {
    if (batchRows === 0) return;
    const sql = `INSERT IGNORE INTO ${qualified(t.targetTable)} (${cols}) VALUES ${Array(batchRows).fill(tuple).join(', ')}`;
    inserted += await write(sql, batch);
    batch = [];
    batchRows = 0;
    bytes = 0;
  };
  for (const row of rows) {
    for (const c of t.columns) {
      const v = row[c] ?? null;
      batch.push(v);
      bytes += v === null ? 4 : v.length * 2 + 4;
    }
    batchRows++;
    if (bytes >= t.target.maxStatementBytes / 2) await flush();
  }
  await flush();
  return inserted;
}

/** Smallest id above `after` (or the smallest of all when `after` is null): one index probe. */
export async function nextExistingId(conn: SqlConnection, table: TableRef, idColumn: string, after: string | null): Promise<string | null> {
  const id = quoteIdent(idColumn);
  const rows = after === null
    ? await conn.query(`SELECT MIN(${id}) AS next_id FROM ${qualified(table)}`)
    : await conn.query(`SELECT MIN(${id}) AS next_id FROM ${qualified(table)} WHERE ${id} > ?`, [after]);
  const v = rows[0]?.next_id;
  return v === undefined || v === null ? null : String(v);
}

export async function idBounds(conn: SqlConnection, table: TableRef, idColumn: string): Promise<{ min: string | null; max: string | null }> {
  const id = quoteIdent(idColumn);
  const rows = await conn.query(`SELECT MIN(${id}) AS min_id, MAX(${id}) AS max_id FROM ${qualified(table)}`);
  const r = rows[0] ?? {};
  return { min: r.min_id == null ? null : String(r.min_id), max: r.max_id == null ? null : String(r.max_id) };
}

