import type { SqlConnection, SqlRow } from '../ports/sql.ts';
import { wholeValue, type HashColumn } from '../checksum.ts';
import { ERRNO, LocalInfileRefused, ResultTooLarge, type FerryError } from '../errors.ts';
import { addId, compareIds, fromBig, minId, toBig, type Id, type IdRange } from '../ids.ts';
import { nextChunkSpan } from '../chunker.ts';
import { KeyShape, type KeyPredicate, type KeyRange, type KeyValue } from '../keys.ts';

/** Ids per `IN (…)` list: keeps statements short. */
export const IDS_PER_STATEMENT = 1000;
import { qualified, quoteIdent, type TableRef } from '../identifiers.ts';
import { loadDataLines, loadDataSql, type LoadCharset } from './load-data.ts';

export interface CopyTables {
  readonly source: SqlConnection;
  readonly target: SqlConnection;
  readonly sourceTable: TableRef;
  readonly targetTable: TableRef;
  /** The key's first column; the whole key when it is one integer column (table-copy's only kind). */
  readonly idColumn: string;
  /** The key rows are copied, compared and ranged by: the columns of `keyIndex`, the same in both tables (absent: `idColumn` alone, an integer). */
  readonly key?: KeyShape;
  /** The source's unique index on the key, the one the copy reads by (see CopyKey). */
  readonly keyIndex: string;
  /**
   * The target's unique index on exactly the key's columns, when it has one: locking reads of the
   * target go through it, whatever the optimizer's statistics say (on a table just filled they can
   * make a range read scan another index, locking every row it passes).
   */
  readonly targetKeyIndex?: string | null;
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

/** The key a copy goes by (see CopyTables.key). */
export function keyOf(t: Pick<CopyTables, 'key' | 'idColumn'>): KeyShape {
  return t.key ?? KeyShape.integer(t.idColumn);
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
export async function copyRange(t: CopyTables, range: KeyRange): Promise<CopyResult> {
  const cols = readList(t);
  const key = keyOf(t);
  const within = key.within(range);
  if (sameServer(t)) {
    if (t.inTransaction || !t.target.sessions) return { inserted: await insertSelect(t, within) };
    return { inserted: await inPieces(t, range, t.readLock ? (piece) => lockedPiece(t, piece) : (piece) => insertSelect(t, key.within(piece))) };
  }
  if (t.loadCharset && !t.inTransaction && t.source.streamQuery && t.target.loadLocal && !NO_LOCAL_INFILE.has(t.target)) {
    // Rows stream from the source's result into the target's LOAD DATA, a buffer at a time.
    const rows = t.source.streamQuery(`SELECT ${cols} FROM ${qualified(t.sourceTable)} WHERE ${within.sql} ORDER BY ${key.orderBy()}`, within.params)[Symbol.asyncIterator]();
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
  // Rows travel through ferry: read in pages the source can return at once, from the lowest key up.
  let inserted = 0;
  let pageRows = t.source.readPageRows;
  let from = range;
  for (;;) {
    let rows: SqlRow[];
    const where = key.within(from);
    try {
      // a key other than one integer is read as it travels too (see KeyShape), to start the next page from
      rows = await t.source.query(`SELECT ${cols}${key.isInteger ? '' : `, ${key.select()}`} FROM ${qualified(t.sourceTable)} WHERE ${where.sql} ORDER BY ${key.orderBy()} LIMIT ${pageRows}`, where.params);
    } catch (err) {
      if (err instanceof ResultTooLarge && pageRows > 1) {
        pageRows = Math.max(1, Math.floor(pageRows / 2));
        continue;
      }
      throw err;
    }
    inserted += await insertRows(t, rows);
    if (rows.length < pageRows) return { inserted };
    const last = rows[rows.length - 1]!;
    from = key.isInteger ? { lo: addId(String(last[t.idColumn]), 1), hi: range.hi } : { lo: key.fromRow(last), loExcluded: true, hi: range.hi };
  }
}

/**
 * `INSERT IGNORE … SELECT` on one server. Without `readLock` the source is read as a consistent,
 * non-locking read (READ COMMITTED for this statement): a row whose transaction is still open is
 * not waited for, and is found later among the holes. With it (inside a transaction), see
 * lockedPiece. Returns the rows written.
 */
async function insertSelect(t: CopyTables, where: KeyPredicate): Promise<number> {
  const sql = insertSelectSql(t, where.sql);
  if (!t.readLock && !t.inTransaction && t.target.sessions) return insertSelectNotLocking(t.target, sql, where.params);
  return (await t.target.execute(sql, where.params)).affectedRows;
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

/** The span (ids, or rows of another key) of the last piece each connection copied, to start the next chunk's from. */
const pieceSpans = new WeakMap<SqlConnection, number>();

/**
 * Copies a range on one server in pieces of about PIECE_MILLIS each, sized by time as chunks are
 * (a chunk keeps its own size, checkpoint and verification; its pieces only bound how long the
 * copy holds a lock): spans of ids for an integer key, runs of rows for any other. Returns the rows written.
 */
async function inPieces(t: CopyTables, range: KeyRange, copy: (piece: KeyRange) => Promise<number>): Promise<number> {
  const settings = { targetMillis: PIECE_MILLIS, minSpan: 1, maxSpan: Number.MAX_SAFE_INTEGER };
  let span = pieceSpans.get(t.target) ?? 100;
  let inserted = 0;
  const byRows = t.readLock && !keyOf(t).isInteger;
  for (let rest: KeyRange | null = range; rest !== null; ) {
    const started = performance.now();
    const first: { inserted: number; rest: KeyRange | null } | null = byRows ? await firstRowsLocked(t, rest, span) : null;
    if (first) {
      inserted += first.inserted;
      rest = first.rest;
    } else {
      const [piece, after]: [KeyRange, KeyRange | null] = await splitOff(t, rest, span);
      inserted += await copy(piece);
      rest = after;
    }
    span = nextChunkSpan(span, performance.now() - started, settings);
  }
  pieceSpans.set(t.target, span);
  return inserted;
}

/**
 * A piece of a copy that triggers keep in step (see lockedPiece) by a key other than one integer,
 * without first looking for where it ends: the range's first `span` rows, read under share locks
 * with `NOWAIT` and written in one transaction; the piece ends at the last row read. Null, having
 * done nothing, when another transaction held one of them: the piece is then found and split as
 * any other (see lockingRange).
 */
async function firstRowsLocked(t: CopyTables, range: KeyRange, span: number): Promise<{ inserted: number; rest: KeyRange | null } | null> {
  const key = keyOf(t);
  const where = key.within(range);
  try {
    return await givingWay(t.target, async (tx) => {
      const rows = await tx.query(
        `SELECT ${readList(t)}, ${key.select()} FROM ${qualified(t.sourceTable)} FORCE INDEX (${quoteIdent(t.keyIndex)}) WHERE ${where.sql} ORDER BY ${key.orderBy()} LIMIT ${Math.max(1, Math.trunc(span))} LOCK IN SHARE MODE NOWAIT`,
        where.params,
      );
      const inserted = await insertRows({ ...t, target: tx }, rows);
      return { inserted, rest: rows.length < span ? null : { lo: key.fromRow(rows[rows.length - 1]!), loExcluded: true, hi: range.hi } };
    }, { stopping: t.stopping, attempts: 1 });
  } catch (err) {
    const errno = (err as FerryError).errno;
    if (errno !== ERRNO.LOCK_WAIT_TIMEOUT && errno !== ERRNO.DEADLOCK) throw err;
    return null;
  }
}

/** The first `span` ids (or rows, for a key that is not one integer) of a range, and what is left after them (null: nothing). */
async function splitOff(t: CopyTables, range: KeyRange, span: number): Promise<[KeyRange, KeyRange | null]> {
  const key = keyOf(t);
  if (key.isInteger && range.lo !== null) {
    const lo = range.loExcluded ? addId(range.lo, 1) : range.lo;
    const hi = minId(addId(lo, span - 1), range.hi);
    return [{ lo, hi }, compareIds(hi, range.hi) < 0 ? { lo: addId(hi, 1), hi: range.hi } : null];
  }
  const hi = await keyAt(t.source, t.sourceTable, key, range, span - 1);
  return hi === null ? [range, null] : [{ ...range, hi }, { lo: hi, loExcluded: true, hi: range.hi }];
}

/**
 * The key `offset` rows into a range of the table, in key order (a consistent read, locking none),
 * or null when the range holds no more rows than that. One pass over that many entries of the index.
 */
export async function keyAt(conn: SqlConnection, table: TableRef, key: KeyShape, range: KeyRange, offset: number): Promise<KeyValue | null> {
  const where = key.within(range);
  const rows = await conn.query(`SELECT ${key.select()} FROM ${qualified(table)} WHERE ${where.sql} ORDER BY ${key.orderBy()} LIMIT 1 OFFSET ${Math.max(0, Math.trunc(offset))}`, where.params);
  return rows[0] ? key.fromRow(rows[0]) : null;
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
async function lockedPiece(t: CopyTables, piece: KeyRange): Promise<number> {
  const key = keyOf(t);
  return lockingRange(t.target, piece, async (tx, p, wait) => {
    const where = key.within(p);
    const rows = await tx.query(`SELECT ${readList(t)} FROM ${qualified(t.sourceTable)} FORCE INDEX (${quoteIdent(t.keyIndex)}) WHERE ${where.sql} ORDER BY ${key.orderBy()} LOCK IN SHARE MODE${wait}`, where.params);
    return insertRows({ ...t, target: tx }, rows);
  }, { stopping: t.stopping, key, table: t.sourceTable });
}

/**
 * Runs `fn` on a range of a live table in one transaction whose first statement share-locks the
 * range's rows, `wait` being what that locking read ends with. Over more than one key it is
 * ` NOWAIT`: when another transaction holds one of the rows, the read fails at once, the
 * transaction is rolled back, and each half of the range is done the same way on its own; a single
 * key waits for its row (see givingWay), holding no other lock. So ferry never waits for an
 * application's lock while it holds one the application may be waiting for: an application
 * transaction that has written one row and then wants another that ferry share-locked (a
 * transaction of several statements) only waits for ferry's transaction to end. Were ferry's read
 * to wait instead, InnoDB would break that cycle by failing the application's transaction, the one
 * holding fewer locks. An integer key's range is halved by its ids; any other's at its middle row,
 * read from `table` (a range of one row or none waits). Returns the sum of what `fn` returned.
 */
export async function lockingRange(
  conn: SqlConnection,
  range: KeyRange,
  fn: (tx: SqlConnection, range: KeyRange, wait: '' | ' NOWAIT') => Promise<number>,
  { stopping, key, table }: { stopping?: AbortSignal | undefined; key: KeyShape; table: TableRef },
): Promise<number> {
  if (!oneKey(range, key)) {
    try {
      return await givingWay(conn, (tx) => fn(tx, range, ' NOWAIT'), { stopping, attempts: 1 });
    } catch (err) {
      const errno = (err as FerryError).errno;
      if (errno !== ERRNO.LOCK_WAIT_TIMEOUT && errno !== ERRNO.DEADLOCK) throw err;
    }
    // cut only once a row was found locked: a key other than one integer is cut at its middle row, which takes reading
    const halves = await halve(conn, range, key, table);
    if (halves) {
      let sum = 0;
      for (const half of halves) sum += await lockingRange(conn, half, fn, { stopping, key, table });
      return sum;
    }
  }
  return givingWay(conn, (tx) => fn(tx, range, ''), { stopping });
}

/** Whether the range holds one key at most, known without reading: one id, or a range that starts at its end. */
function oneKey(range: KeyRange, key: KeyShape): boolean {
  if (!key.isInteger || range.lo === null) return key.single(range);
  return compareIds(range.loExcluded ? addId(range.lo, 1) : range.lo, range.hi) >= 0;
}

/** A range cut in two (see lockingRange), or null when it holds one key at most. */
async function halve(conn: SqlConnection, range: KeyRange, key: KeyShape, table: TableRef): Promise<KeyRange[] | null> {
  if (key.isInteger && range.lo !== null) {
    const lo = range.loExcluded ? addId(range.lo, 1) : range.lo;
    if (compareIds(lo, range.hi) >= 0) return null;
    const mid = fromBig((toBig(lo) + toBig(range.hi)) >> 1n);
    return [{ lo, hi: mid }, { lo: addId(mid, 1), hi: range.hi }];
  }
  if (key.single(range)) return null;
  const where = key.within(range);
  const rows = Number((await conn.query(`SELECT COUNT(*) AS n FROM ${qualified(table)} WHERE ${where.sql}`, where.params))[0]?.n ?? 0);
  if (rows <= 1) return null;
  const mid = await keyAt(conn, table, key, range, Math.floor((rows - 1) / 2));
  return mid === null ? null : [{ ...range, hi: mid }, { lo: mid, loExcluded: true, hi: range.hi }];
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
    const where = keyOf(t).oneOf(ids.slice(i, i + IDS_PER_STATEMENT));
    if (sameServer(t)) {
      inserted += await insertSelect(t, where);
    } else {
      inserted += await insertRows(t, await t.source.query(`SELECT ${readList(t)} FROM ${qualified(t.sourceTable)} WHERE ${where.sql}`, where.params));
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

/** The lowest and highest key of the table (null: it is empty): two probes of the index. */
export async function keyBounds(conn: SqlConnection, table: TableRef, key: KeyShape): Promise<{ min: KeyValue | null; max: KeyValue | null }> {
  if (key.isInteger) return idBounds(conn, table, key.columns[0]!.name);
  const end = async (direction: 'ASC' | 'DESC') => {
    const rows = await conn.query(`SELECT ${key.select()} FROM ${qualified(table)} ORDER BY ${key.orderBy(direction)} LIMIT 1`);
    return rows[0] ? key.fromRow(rows[0]) : null;
  };
  return { min: await end('ASC'), max: await end('DESC') };
}

/**
 * The highest key found in any of these tables (they share the key's columns and types), or null
 * when all are empty: the first table's highest, then each next table's highest above it, read in
 * one statement. (Reading a table's highest first and asking after whether it holds a key above
 * the others' lost a race with a trigger writing it: a row written in between made the stale
 * highest the answer, below rows the first table held.) (Keys
 * compared as the key's predicates compare them: read through a UNION, an ENUM would become text.)
 */
export async function highestKey(conn: SqlConnection, tables: readonly TableRef[], key: KeyShape): Promise<KeyValue | null> {
  let top: KeyValue | null = null;
  for (const t of tables) {
    if (top === null) {
      top = (await keyBounds(conn, t, key)).max;
      continue;
    }
    // the highest key above `top`, in one statement: a row another session writes meanwhile (a trigger's) can only raise it
    const above = key.after(top);
    const rows = await conn.query(`SELECT ${key.select()} FROM ${qualified(t)} WHERE ${above.sql} ORDER BY ${key.orderBy('DESC')} LIMIT 1`, above.params);
    if (rows[0]) top = key.fromRow(rows[0]);
  }
  return top;
}

export async function idBounds(conn: SqlConnection, table: TableRef, idColumn: string): Promise<{ min: string | null; max: string | null }> {
  const id = quoteIdent(idColumn);
  const rows = await conn.query(`SELECT MIN(${id}) AS min_id, MAX(${id}) AS max_id FROM ${qualified(table)}`);
  const r = rows[0] ?? {};
  return { min: r.min_id == null ? null : String(r.min_id), max: r.max_id == null ? null : String(r.max_id) };
}

