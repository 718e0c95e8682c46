import { qualified, type TableRef } from '../identifiers.ts';
import { str, type SqlConnection } from '../ports/sql.ts';
import { inspectTable } from './inspector.ts';
import { allOn, closeWindow, logWrite, windowLag, windowTriggers } from './revert-window.ts';
import { createCaptureLog, TRIGGER_SQL_MODE, windowNames, withShortLockWait, type DdlLock } from './shadow.ts';

/**
 * table-copy's revert window: from the copy flags until the cleanup, the id of every row the
 * application writes in the new table is logged, in the same transaction as the write, so `ferry
 * revert` compares only the ledger spans those ids fall in (and the rows above the ledger) instead
 * of every span.
 *
 * Three triggers on the new table write the window's log (the same triggers and log as
 * online-alter's window, see revert-window.ts): AFTER UPDATE and AFTER DELETE log every row, AFTER
 * INSERT only a row whose id is at or above the floor the new table's AUTO_INCREMENT was raised to
 * (the application's inserts; `insertsFrom`). ferry's own copy into the new table is `INSERT IGNORE`
 * (and LOAD DATA … IGNORE) of the old table's rows, whose ids are below that floor, which fires
 * neither of the others: the log stays the size of what the application writes, not of the table.
 * An insert logged lets a later revert find a row that committed after an earlier revert had
 * carried the ids around it (a transaction still open then). A new table without AUTO_INCREMENT
 * gets no insert trigger: its inserts are found above the ledger only. ferry's own repairs of the
 * new table (a verification's re-copy, the sweep) may log an id now and then: the revert compares
 * it, finds both sides equal, and moves on. A key that is not one integer id has no window.
 *
 * The window is made before the copy flags go on, so no write of the application precedes it; each
 * trigger is made only when it is not on the table, never dropped and made again while the
 * application writes (a write in between would go unlogged).
 */

/** An id as a parameter, compared exactly (an integer column against a string would be compared as doubles). */
const ID = 'CAST(? AS DECIMAL(20,0))';

/** How DDL on the new table waits for its metadata lock once the application uses it: 2 s at a time, 10 times. */
const WINDOW_LOCK: DdlLock = { seconds: 2, attempts: 10 };

/** The window's triggers on the new table: an id's update and deletion, and (with `inserts`) its insertion. */
export function copyWindowTriggers(migrationId: string, t: TableRef, { inserts = true }: { inserts?: boolean } = {}): string[] {
  const names = windowNames(migrationId, t);
  return [names.update, names.delete, ...(inserts ? [names.insert] : [])];
}

/**
 * Opens the window on the new table `t` keyed by `idColumn`: its log made unless it is there, then
 * each trigger not on the table made, under the short lock wait; inserts are logged from the id
 * `insertsFrom` up (null: none are).
 */
export async function openCopyWindow(conn: SqlConnection, migrationId: string, t: TableRef, idColumn: string, insertsFrom: bigint | null, lock: DdlLock): Promise<void> {
  const info = await inspectTable(conn, t);
  const column = info?.columns.find((c) => c.name.toLowerCase() === idColumn.toLowerCase());
  if (!column) throw new TypeError(`${t.database}.${t.table} has no column ${idColumn}`);
  await createCaptureLog(conn, windowNames(migrationId, t).log, [column]);
  const sql = windowTriggers(migrationId, t, t, [column.name]);
  const names = windowNames(migrationId, t);
  const { into, keyOf } = logWrite(migrationId, t, [column.name]);
  // the floor is a BigInt ferry computed (RaiseAutoIncrement), never text from the input
  const inserts = insertsFrom === null ? [] : ([[names.insert, `CREATE TRIGGER ${qualified({ database: t.database, table: names.insert })} AFTER INSERT ON ${qualified(t)} FOR EACH ROW BEGIN IF ${keyOf('NEW')} >= ${insertsFrom.toString()} THEN ${into} (${keyOf('NEW')}, 'insert'); END IF; END`]] as const);
  await makeTriggers(conn, t, [[names.update, sql.UPDATE], [names.delete, sql.DELETE], ...inserts], lock).catch(async (err: unknown) => {
    // refused (no TRIGGER grant, a binary log without SUPER): nothing of a window that never opened stays
    if (!(await copyWindowLeft(conn, migrationId, t, { triggersOnly: true }))) await conn.execute(`DROP TABLE IF EXISTS ${qualified(names.log)}`).catch(() => undefined);
    throw err;
  });
}

/** Makes each of these triggers not on the table yet, in one session, under the short lock wait. */
async function makeTriggers(conn: SqlConnection, t: TableRef, triggers: readonly (readonly [string, string])[], lock: DdlLock): Promise<void> {
  // the sql_mode and the lock wait are a session's: through the Data API, one transaction keeps them on one
  await inOneSession(conn, (s) =>
    withShortLockWait(s, lock, async () => {
      await s.execute(`SET @ferry_sql_mode = @@SESSION.sql_mode, SESSION sql_mode = '${TRIGGER_SQL_MODE}'`);
      try {
        for (const [name, create] of triggers) if (!(await allOn(s, t, [name]))) await s.execute(create);
      } finally {
        await s.execute('SET SESSION sql_mode = @ferry_sql_mode');
      }
    }),
  );
}

/** Runs `fn` on one session: the connection itself when it keeps one, else inside a transaction. */
function inOneSession<T>(conn: SqlConnection, fn: (s: SqlConnection) => Promise<T>): Promise<T> {
  return conn.sessions ? fn(conn) : conn.transaction(fn);
}

/** Whether the window is open on the new table: its triggers on it (the insert trigger only with `inserts`), and its log there. */
export async function copyWindowOpen(conn: SqlConnection, migrationId: string, t: TableRef, { inserts = false }: { inserts?: boolean } = {}): Promise<boolean> {
  return (await allOn(conn, t, copyWindowTriggers(migrationId, t, { inserts }))) && (await inspectTable(conn, windowNames(migrationId, t).log)) !== null;
}

/** Whether anything of the window is left: a trigger on the table, or the log (not looked at with `triggersOnly`). */
export async function copyWindowLeft(conn: SqlConnection, migrationId: string, t: TableRef, { triggersOnly = false } = {}): Promise<boolean> {
  const rows = await conn.query(
    `SELECT COUNT(*) AS n FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ? AND TRIGGER_NAME IN (?, ?, ?)`,
    [t.database, t.table, ...copyWindowTriggers(migrationId, t)],
  );
  if (String(rows[0]?.n ?? '0') !== '0') return true;
  return !triggersOnly && (await inspectTable(conn, windowNames(migrationId, t).log)) !== null;
}

/** Closes the window: its triggers off the new table first (under the short lock wait), then its log. */
export async function closeCopyWindow(conn: SqlConnection, migrationId: string, t: TableRef, lock: DdlLock): Promise<void> {
  await inOneSession(conn, (s) => closeWindow(s, migrationId, t, lock));
}

/** The log's highest entry now (null: empty): a revert carries the writes logged up to it. */
export async function lastLogged(conn: SqlConnection, migrationId: string, t: TableRef): Promise<string | null> {
  const rows = await conn.query(`SELECT MAX(seq) AS seq FROM ${qualified(windowNames(migrationId, t).log)}`);
  const v = rows[0]?.seq;
  return v == null ? null : String(v);
}

/** The lowest id the log names above `after` (from the lowest with null) in its entries up to `upTo`; null when none. */
export async function nextLoggedId(conn: SqlConnection, migrationId: string, t: TableRef, upTo: string, after: string | null): Promise<string | null> {
  const rows = await conn.query(
    `SELECT CAST(MIN(row_id) AS CHAR) AS id FROM ${qualified(windowNames(migrationId, t).log)} WHERE seq <= ?${after === null ? '' : ` AND row_id > ${ID}`}`,
    after === null ? [upTo] : [upTo, after],
  );
  return rows[0] ? str(rows[0], 'id') : null;
}

/** The seqs of the log's entries up to `upTo` naming an id in `range`, oldest first, at most `limit`. */
export async function loggedSeqs(conn: SqlConnection, migrationId: string, t: TableRef, upTo: string, range: { lo: string; hi: string }, limit: number): Promise<string[]> {
  const rows = await conn.query(`SELECT seq FROM ${qualified(windowNames(migrationId, t).log)} WHERE seq <= ? AND row_id BETWEEN ${ID} AND ${ID} ORDER BY seq LIMIT ${Math.trunc(limit)}`, [upTo, range.lo, range.hi]);
  return rows.map((r) => str(r, 'seq')!);
}

/**
 * The distinct ids at or below `top` (the ledger's) that the log names (up to a million), and when
 * the oldest of those entries was written (see windowLag); null when there is no log. What the log
 * names above the ledger are the application's inserts, counted with the rows above it.
 */
export async function loggedAmongCopied(conn: SqlConnection, migrationId: string, t: TableRef, top: string | null): Promise<{ rows: string; since: string | null } | null> {
  return windowLag(conn, migrationId, t, top === null ? { sql: 'FALSE', params: [] } : { sql: `row_id <= ${ID}`, params: [top] });
}

/** WINDOW_LOCK, given up once the run is stopping. */
export function windowLock(stopping: AbortSignal | undefined): DdlLock {
  return { ...WINDOW_LOCK, ...(stopping ? { stopping } : {}) };
}
