import { qualified, quoteIdent, type TableRef } from '../identifiers.ts';
import { str, type SqlConnection } from '../ports/sql.ts';
import type { KeyShape, KeyValue } from '../keys.ts';
import type { ColumnInfo } from './inspector.ts';
import { inspectTable } from './inspector.ts';
import { createCaptureLog, dropWindowAnchors, logColumns, logKey, shadowNames, TRIGGER_SQL_MODE, windowNames, withShortLockWait, type DdlLock } from './shadow.ts';

/**
 * The revert window of an online-alter: from the swap until the cleanup (or a revert), the key of
 * every row the application writes in the altered table is logged, in the same transaction, so a
 * revert compares and carries back those rows alone instead of the whole table.
 *
 * Three triggers (AFTER INSERT, UPDATE, DELETE) insert the row's key into the window's log: an
 * update that changes the key logs both keys. They are made on the shadow right before the swap, so
 * the RENAME carries them onto the table with it: no write falls between the swap and the window,
 * and a write of the application that queued behind the RENAME was prepared with the log already
 * among its tables (a table a trigger uses that the statement did not prepare fails it, 1146).
 * Until the swap they log the forward triggers' writes into the shadow too: the application's writes
 * of those last seconds, compared once more by a revert, harmlessly. The log is the revert's capture
 * log (see windowNames): a revert's own triggers log the rows the original refuses into it.
 *
 * A write of the application that met the RENAME half-way (it had opened the table, then found the
 * shadow locked by the RENAME) opens its tables again after it, but with the tables the table's
 * triggers used the first time: the altered table's triggers then write a table it did not
 * prepare, and MariaDB fails the write (1146). So until the swap the table also carries stand-ins
 * (anchorSql): triggers whose body never runs but names the log, dropped right after the swap.
 */
export function windowTriggerSql(migrationId: string, t: TableRef, on: TableRef, keyColumns: readonly string[]): string[] {
  const sql = windowTriggers(migrationId, t, on, keyColumns);
  return [sql.DELETE, sql.UPDATE, sql.INSERT];
}

/** The window's trigger for each event (see windowTriggerSql), on `on`, logging into the log of `t`'s window. */
export function windowTriggers(migrationId: string, t: TableRef, on: TableRef, keyColumns: readonly string[]): Record<'INSERT' | 'UPDATE' | 'DELETE', string> {
  const names = windowNames(migrationId, t);
  const { into, keyOf } = logWrite(migrationId, t, keyColumns);
  const sameKey = keyColumns.map((c) => `OLD.${quoteIdent(c)} <=> NEW.${quoteIdent(c)}`).join(' AND ');
  const create = (name: string, event: string) => `CREATE TRIGGER ${qualified({ database: t.database, table: name })} AFTER ${event} ON ${qualified(on)} FOR EACH ROW`;
  return {
    DELETE: `${create(names.delete, 'DELETE')} ${into} (${keyOf('OLD')}, 'delete')`,
    UPDATE: `${create(names.update, 'UPDATE')} BEGIN ${into} (${keyOf('NEW')}, 'update'); IF NOT (${sameKey}) THEN ${into} (${keyOf('OLD')}, 'update'); END IF; END`,
    INSERT: `${create(names.insert, 'INSERT')} ${into} (${keyOf('NEW')}, 'insert')`,
  };
}

/** How a trigger writes the window's log: `INSERT INTO log (keys…, event) VALUES`, and a row's key as NEW or OLD. */
export function logWrite(migrationId: string, t: TableRef, keyColumns: readonly string[]): { into: string; keyOf: (which: 'NEW' | 'OLD') => string } {
  return {
    into: `INSERT INTO ${qualified(windowNames(migrationId, t).log)} (${logColumns(keyColumns.length).map(quoteIdent).join(', ')}, event) VALUES`,
    keyOf: (which) => keyColumns.map((c) => `${which}.${quoteIdent(c)}`).join(', '),
  };
}

/** The window's stand-ins on the table before the swap: AFTER INSERT, UPDATE, DELETE, `IF FALSE THEN` a write of the log. */
function anchorSql(migrationId: string, t: TableRef, keyColumns: readonly string[]): string[] {
  const names = windowNames(migrationId, t);
  const { into, keyOf } = logWrite(migrationId, t, keyColumns);
  return (['INSERT', 'UPDATE', 'DELETE'] as const).map(
    (event, i) => `CREATE TRIGGER ${qualified({ database: t.database, table: names.anchors[i]! })} AFTER ${event} ON ${qualified(t)} FOR EACH ROW BEGIN IF FALSE THEN ${into} (${keyOf(event === 'DELETE' ? 'OLD' : 'NEW')}, 'anchor'); END IF; END`,
  );
}

/**
 * Opens the window on `on` (the shadow before the swap, with the stand-ins on the table; the table
 * itself when a refused revert gives the window back): the log made unless it is there, then the
 * triggers, any of them there already dropped first. DDL on the table (and on the shadow, which
 * every write of the table opens through the forward triggers): the caller holds the short lock
 * wait (see openWindow).
 */
export async function makeWindow(conn: SqlConnection, migrationId: string, t: TableRef, on: TableRef, keyColumns: readonly ColumnInfo[]): Promise<void> {
  const names = keyColumns.map((c) => c.name);
  await createCaptureLog(conn, windowNames(migrationId, t).log, keyColumns);
  await dropWindowTriggers(conn, migrationId, t);
  await dropWindowAnchors(conn, migrationId, t);
  await conn.execute(`SET @ferry_sql_mode = @@SESSION.sql_mode, SESSION sql_mode = '${TRIGGER_SQL_MODE}'`);
  try {
    // the stand-ins first: a write that opens the table from now on has the log among its tables
    if (qualified(on) !== qualified(t)) for (const sql of anchorSql(migrationId, t, names)) await conn.execute(sql);
    for (const sql of windowTriggerSql(migrationId, t, on, names)) await conn.execute(sql);
  } finally {
    await conn.execute('SET SESSION sql_mode = @ferry_sql_mode');
  }
}

/** makeWindow under the short lock wait. */
export async function openWindow(conn: SqlConnection, migrationId: string, t: TableRef, on: TableRef, keyColumns: readonly ColumnInfo[], lock: DdlLock): Promise<void> {
  await withShortLockWait(conn, lock, () => makeWindow(conn, migrationId, t, on, keyColumns));
}

/** Drops the window's triggers, wherever they are (the caller holds the short lock wait). */
export async function dropWindowTriggers(conn: SqlConnection, migrationId: string, t: TableRef): Promise<void> {
  const names = windowNames(migrationId, t);
  for (const n of [names.insert, names.update, names.delete]) await conn.execute(`DROP TRIGGER IF EXISTS ${qualified({ database: t.database, table: n })}`);
}

/** Closes the window: its triggers first (under the short lock wait), then its log. */
export async function closeWindow(conn: SqlConnection, migrationId: string, t: TableRef, lock: DdlLock): Promise<void> {
  await withShortLockWait(conn, lock, () => dropWindowTriggers(conn, migrationId, t));
  await conn.execute(`DROP TABLE IF EXISTS ${qualified(windowNames(migrationId, t).log)}`);
}

/** Whether all these triggers are on the table. */
export async function allOn(conn: SqlConnection, t: TableRef, names: readonly string[]): Promise<boolean> {
  const rows = await conn.query(
    `SELECT COUNT(*) AS n FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ? AND TRIGGER_NAME IN (${names.map(() => '?').join(', ')})`,
    [t.database, t.table, ...names],
  );
  return str(rows[0]!, 'n') === String(names.length);
}

/** Whether the window is open on the table: all three of its triggers are on it, and its log is there. */
export async function windowOpen(conn: SqlConnection, migrationId: string, t: TableRef): Promise<boolean> {
  const names = windowNames(migrationId, t);
  return (await allOn(conn, t, [names.insert, names.update, names.delete])) && (await inspectTable(conn, names.log)) !== null;
}

/** The most rows the lag is counted to. */
const LAG_COUNTED_UP_TO = 1_000_000;

/**
 * How far the original trails the table: the distinct rows the log names (up to a million; only the
 * entries `among` selects, when given), and when the oldest entry was written (the original held
 * every write before it); null when there is no log.
 */
export async function windowLag(conn: SqlConnection, migrationId: string, t: TableRef, among?: { readonly sql: string; readonly params: readonly unknown[] }): Promise<{ rows: string; since: string | null } | null> {
  const log = windowNames(migrationId, t).log;
  const info = await inspectTable(conn, log);
  if (!info) return null;
  const cols = logColumns(info.columns.filter((c) => /^row_id(_[0-9]+)?$/.test(c.name)).length).map(quoteIdent).join(', ');
  const where = among ? ` WHERE ${among.sql}` : '';
  // counted up to a bound, so a page refreshed often never reads a log of many millions of writes through
  const [r] = await conn.query(`SELECT COUNT(*) AS n FROM (SELECT DISTINCT ${cols} FROM ${qualified(log)}${where} LIMIT ${LAG_COUNTED_UP_TO + 1}) AS d`, among?.params ?? []);
  const [oldest] = await conn.query(`SELECT DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s') AS since FROM ${qualified(log)}${where} ORDER BY seq LIMIT 1`, among?.params ?? []);
  const n = Number(str(r!, 'n') ?? '0');
  return { rows: n > LAG_COUNTED_UP_TO ? `more than ${LAG_COUNTED_UP_TO}` : String(n), since: oldest ? str(oldest, 'since') : null };
}

/** The window in words, for `ferry status` and the page: null when it is not open on the table. */
export async function windowInWords(conn: SqlConnection, migrationId: string, t: TableRef): Promise<string | null> {
  if (!(await windowOpen(conn, migrationId, t))) return null;
  const lag = await windowLag(conn, migrationId, t);
  const old = `${t.database}.${shadowNames(t).old.table}`;
  const behind = !lag || lag.rows === '0' ? `${old} is caught up` : `${old} is ${lag.rows} rows behind (the oldest of those writes at ${lag.since}, the writer's clock)`;
  return `revert window open on ${t.database}.${t.table}: ferry's triggers log the key of each row the application writes there; ${behind}: ferry revert carries those rows back (the cleanup closes the window)`;
}

/** The log's oldest entries, by seq (at most `limit`): their seqs, and the distinct keys they name. */
export async function windowEntries(conn: SqlConnection, migrationId: string, t: TableRef, key: KeyShape, limit: number): Promise<{ seqs: string[]; keys: KeyValue[] }> {
  const inLog = logKey(key);
  const rows = await conn.query(`SELECT seq, ${inLog.select()} FROM ${qualified(windowNames(migrationId, t).log)} ORDER BY seq LIMIT ${Math.trunc(limit)}`);
  return { seqs: rows.map((r) => str(r, 'seq')!), keys: [...new Set(rows.map((r) => inLog.fromRow(r)))] };
}

/**
 * Forgets these entries of the log, by seq alone: a write logged meanwhile, or one whose
 * transaction had not committed when the entries were read (its seq may be lower), stays.
 */
export async function forgetWindowEntries(conn: SqlConnection, migrationId: string, t: TableRef, seqs: readonly string[]): Promise<void> {
  for (let i = 0; i < seqs.length; i += 1000) {
    const these = seqs.slice(i, i + 1000);
    await conn.execute(`DELETE FROM ${qualified(windowNames(migrationId, t).log)} WHERE seq IN (${these.map(() => '?').join(', ')})`, these);
  }
}

/** Logs these keys again (a refused revert gives back the rows it set aside). */
export async function logAgain(conn: SqlConnection, migrationId: string, t: TableRef, key: KeyShape, keys: readonly KeyValue[]): Promise<void> {
  const inLog = logKey(key);
  const cols = logColumns(key.columns.length).map(quoteIdent).join(', ');
  for (const k of keys) {
    const v = inLog.valuesOf(k);
    await conn.execute(`INSERT INTO ${qualified(windowNames(migrationId, t).log)} (${cols}, event) VALUES (${v.sql}, 'revert')`, v.params);
  }
}
