import { createHash } from 'node:crypto';
import { droppedColumns, renameDroppedConstraints, renameMap, setsAutoIncrement } from '../alter-clause.ts';
import { DatabaseError, ERRNO, VerificationFailed, type FerryError } from '../errors.ts';
import { isPlainName, qualified, quoteIdent, type TableRef } from '../identifiers.ts';
import { str, type SqlConnection } from '../ports/sql.ts';
import { autoIncrementOf, copiedColumns, foreignKeysOf, inspectTable, integerRange, uniqueIndexOnAll, type ColumnInfo, type TableInfo } from './inspector.ts';
import type { KeyRange, KeyShape, KeyValue } from '../keys.ts';
import { newUniqueKeys } from './unique-keys.ts';
import { setAutoIncrement } from './table-writes.ts';
import { insertMissing, repairRange, writeFromSource } from './verifier.ts';
import { keyOf, type CopyTables } from './copier.ts';

/** What the capture triggers go by: the key's columns (the table's names), and the shadow's unique indexes on which a duplicate can only be the row itself, already there. */
export interface CaptureKey {
  readonly columns: readonly string[];
  readonly sameRow: readonly string[];
  /**
   * Integer key columns the altered table holds fewer values of (`int` to `bigint unsigned` has no
   * negative ids): a key outside these bounds is never written to the shadow, where it would be
   * stored as the nearest value it holds, another row's key; the write is logged as refused.
   */
  readonly bounds?: readonly { readonly column: string; readonly min: string; readonly max: string }[];
}

/**
 * The capture key of a table's shadow: the shadow's unique index on the key's columns, and every
 * other unique key of it that one of the table implies (see newUniqueKeys: its columns, types,
 * collations and prefixes): the table enforces it, so a row that meets another there can only
 * meet its own earlier self. A duplicate on any other key (a new one) is a row the altered table
 * refuses. Null when the shadow has no whole unique index on exactly those columns (Preflight
 * refuses such an ALTER).
 */
export function captureKey(tableInfo: TableInfo, shadowInfo: TableInfo, mapping: ColumnMapping, columns: string | readonly string[]): CaptureKey | null {
  const cols = typeof columns === 'string' ? [columns] : columns;
  const idIndex = uniqueIndexOnAll(shadowInfo, cols);
  if (!idIndex) return null;
  const added = new Set(newUniqueKeys(tableInfo, shadowInfo, mapping, cols).map((k) => k.name));
  const bounds = cols.flatMap((column) => {
    const find = (info: TableInfo) => info.columns.find((c) => c.name.toLowerCase() === column.toLowerCase());
    const [before, after] = [find(tableInfo), find(shadowInfo)];
    const [was, is] = [before && integerRange(before), after && integerRange(after)];
    return was && is && (is.min > was.min || is.max < was.max) ? [{ column: before!.name, min: is.min.toString(), max: is.max.toString() }] : [];
  });
  return { columns: cols, sameRow: [idIndex, ...shadowInfo.uniqueIndexes.map((k) => k.name).filter((k) => k !== idIndex && !added.has(k))].filter(isPlainName), ...(bounds.length ? { bounds } : {}) };
}

/** The names ferry gives the altered copy and, after the swap, the original. */
export function shadowNames(t: TableRef): { shadow: TableRef; old: TableRef } {
  return { shadow: { database: t.database, table: `_${t.table}_new` }, old: { database: t.database, table: `_${t.table}_old` } };
}

/** Trigger and capture-log names: fixed length whatever the table's, and recognisably ferry's. */
export function captureNames(migrationId: string, t: TableRef): { insert: string; update: string; delete: string; log: TableRef } {
  const tag = createHash('sha1').update(`${migrationId}\0${t.database}\0${t.table}`).digest('hex').slice(0, 12);
  return { insert: `_ferry_${tag}_ins`, update: `_ferry_${tag}_upd`, delete: `_ferry_${tag}_del`, log: { database: t.database, table: `_ferry_${tag}_log` } };
}

export const FERRY_TRIGGER = /^_ferry_[0-9a-f]{12}_(ins|upd|del)$/;

/** A revert's capture, from the altered table into the original, has an id of its own: its triggers and log are not the forward run's. */
export function revertId(migrationId: string): string {
  return `${migrationId}\0revert`;
}

/**
 * The revert window's names: its triggers (on the shadow, then the altered table), its log, which
 * is the revert's capture log, and its stand-ins on the table until the swap (see revert-window.ts).
 */
export function windowNames(migrationId: string, t: TableRef): { insert: string; update: string; delete: string; log: TableRef; anchors: string[] } {
  const anchors = captureNames(`${migrationId}\0window-anchor`, t);
  return { ...captureNames(`${migrationId}\0window`, t), log: captureNames(revertId(migrationId), t).log, anchors: [anchors.insert, anchors.update, anchors.delete] };
}

/** Drops the revert window's stand-ins, wherever they are (the caller holds the short lock wait). */
export async function dropWindowAnchors(conn: SqlConnection, migrationId: string, t: TableRef): Promise<void> {
  for (const n of windowNames(migrationId, t).anchors) await conn.execute(`DROP TRIGGER IF EXISTS ${qualified({ database: t.database, table: n })}`);
}

/** ferry's capture triggers on the table now, and when the first of them was made (null: none). */
export async function captureOn(conn: SqlConnection, t: TableRef): Promise<{ triggers: string[]; since: string | null }> {
  const rows = await conn.query(
    "SELECT TRIGGER_NAME AS name, DATE_FORMAT(CREATED, '%Y-%m-%d %H:%i:%s') AS created FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ? ORDER BY CREATED",
    [t.database, t.table],
  );
  const ours = rows.filter((r) => FERRY_TRIGGER.test(str(r, 'name') ?? ''));
  // insert, update, delete, whatever order they were made in within the same second
  const event = (name: string) => ['ins', 'upd', 'del'].indexOf(name.slice(-3));
  const triggers = ours.map((r) => str(r, 'name')!).sort((a, b) => event(a) - event(b) || (a < b ? -1 : a > b ? 1 : 0));
  return { triggers, since: ours.length ? str(ours[0]!, 'created') : null };
}

/**
 * The name a foreign key of the table takes on the shadow, and so on the table after the swap:
 * constraint names are unique in a database, so while both tables exist they must differ. As
 * pt-online-schema-change does, a leading underscore is added, or removed if there was one.
 */
export function shadowConstraintName(name: string): string {
  return name.startsWith('_') ? name.slice(1) : `_${name}`;
}

/** Where the table's columns go in the altered one: the pairs that exist on both sides. */
export interface ColumnMapping {
  /** Columns of the table that are copied and compared, in the table's order. */
  readonly source: string[];
  /** Each one's name in the altered table. */
  readonly target: string[];
}

/**
 * Pairs the table's stored columns with the altered table's: by the clause's renames (`CHANGE old
 * new`, `RENAME COLUMN`), and otherwise by name, case-insensitively as MySQL compares them.
 * Dropped columns are not copied, even when the clause adds one of the same name again; added
 * ones take their defaults.
 */
export function columnMapping(table: TableInfo, altered: TableInfo | null, alter: string): ColumnMapping {
  const own = copiedColumns(table);
  if (!altered) return { source: own, target: own };
  const to = renameMap(alter);
  const dropped = droppedColumns(alter);
  const theirs = new Map(copiedColumns(altered).map((c) => [c.toLowerCase(), c]));
  const source: string[] = [];
  const target: string[] = [];
  for (const c of own) {
    if (dropped.has(c.toLowerCase())) continue;
    const there = theirs.get(to(c).toLowerCase());
    if (there === undefined) continue;
    source.push(c);
    target.push(there);
  }
  return { source, target };
}

/**
 * Errors that end the application's statement or transaction whatever ferry does (a deadlock, a
 * lock wait timeout, a killed or timed-out query, the server or its disk failing): a trigger
 * raises them again, so the application's statement fails as it would without ferry. Any other
 * error writing the altered table (a duplicate on one of its unique keys, a foreign key, a CHECK,
 * a value its column refuses) is the altered table refusing the row: it is logged, never raised.
 */
const RAISED_AGAIN = [1021, 1028, 1030, 1036, 1037, 1041, 1053, 1114, 1180, 1181, 1205, 1213, 1317, 1637, 1927, 1969, 3024, 4031];

/**
 * The sql_mode ferry's triggers are created with, and so run with, whatever the application's:
 * not strict, so a value the altered column cannot hold is a warning (the row is logged, see
 * triggerSql) instead of failing the application's write; a division by zero in a generated
 * column a warning too; and an id 0 written as 0.
 */
export const TRIGGER_SQL_MODE = 'NO_AUTO_VALUE_ON_ZERO,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION';

/**
 * Change capture into the shadow: every write to the table is replayed on the shadow in the same
 * transaction. No trigger ever looks for a row of the shadow that is not there: in REPEATABLE READ
 * that takes a gap lock, in the very gap where the copy inserts, and an application transaction
 * that held one and then inserted (waiting for the copy's AUTO-INC lock) would be failed by InnoDB
 * to end the cycle. So each trigger first makes sure the row is there, with `INSERT IGNORE` (an
 * insert only waits for the copy's statement under way, never the other way round), and only then
 * changes or deletes it:
 * - an insert writes the new row;
 * - an update writes the new row, or, when the shadow has the row already, updates it in place;
 *   an update that changes the id takes the old row out (written first if it is not there) before
 *   it writes the new one, which may take the old one's unique values;
 * - a delete writes the old row if it is not there, then deletes it.
 * None ever deletes another row: a row the altered table refuses (a duplicate on a new unique key,
 * a value it cannot hold) is taken out of the shadow and logged with the database's reason in the
 * capture log, which is looked at before the cut-over. A trigger never fails the application's
 * write for a row it refuses; an error that ends the statement anyway is raised again.
 */
export function triggerSql(migrationId: string, t: TableRef, key: CaptureKey, mapping: ColumnMapping, into: TableRef = shadowNames(t).shadow): string[] {
  const names = captureNames(migrationId, t);
  const sh = qualified(into);
  const log = qualified(names.log);
  const keyCols = key.columns.map(quoteIdent);
  const sameKey = (a: 'NEW' | 'OLD', b: 'NEW' | 'OLD') => keyCols.map((c) => `${a}.${c} <=> ${b}.${c}`).join(' AND ');
  // qualified by the shadow's name: inside the trigger an unqualified column named like one of its variables (n, i, m, …) is the variable
  const whereKey = (which: 'NEW' | 'OLD') => keyCols.map((c) => `${sh}.${c} = ${which}.${c}`).join(' AND ');
  // a duplicate met on an index where it can only be the row itself (see captureKey): 1062's text ends with the index's name, as 'k' or 'db.table.k'
  const onKey = `(${key.sameRow.map((k) => `RIGHT(w, ${quoteIdent(k).length}) IN ('''${k}''', '.${k}''')`).join(' OR ')})`;
  const cols = mapping.target.map(quoteIdent).join(', ');
  const row = (which: 'NEW' | 'OLD') => mapping.source.map((c) => `${which}.${quoteIdent(c)}`).join(', ');
  const assignments = mapping.target.map((c, i) => `${quoteIdent(c)} = NEW.${quoteIdent(mapping.source[i]!)}`).join(', ');
  // After a write: m is the first refusal (h, from the handler) or warning but "no default value" (an added NOT NULL column takes its
  // implicit default, as a plain ALTER gives existing rows); p is 1 when the write met the row already there (a duplicate on the primary key).
  // An INSERT IGNORE that leaves its row out always says why in a condition, so the conditions alone decide: the ROW_COUNT a trigger
  // reads in MariaDB is the application's previous statement's (0 after an UPDATE that matched nothing, or at a transaction's start).
  const outcome =
    'GET DIAGNOSTICS n = NUMBER; SET i = 1, m = h, p = 0; ' +
    'WHILE i <= n DO GET DIAGNOSTICS CONDITION i e = MYSQL_ERRNO, w = MESSAGE_TEXT; ' +
    `IF e = 1062 AND ${onKey} THEN SET p = 1; ELSEIF e <> ${ERRNO.NO_DEFAULT} AND m IS NULL THEN SET m = w; END IF; SET i = i + 1; END WHILE; `;
  // After an update in place: m only (its row count depends on the application's client flags).
  const refusal =
    'GET DIAGNOSTICS n = NUMBER; SET i = 1, m = h; ' +
    `WHILE i <= n DO GET DIAGNOSTICS CONDITION i e = MYSQL_ERRNO, w = MESSAGE_TEXT; IF e <> ${ERRNO.NO_DEFAULT} AND m IS NULL THEN SET m = w; END IF; SET i = i + 1; END WHILE; `;
  const write = (which: 'NEW' | 'OLD') => `SET h = NULL; INSERT IGNORE INTO ${sh} (${cols}) VALUES (${row(which)}); `;
  const takeOut = (which: 'NEW' | 'OLD') => `DELETE IGNORE FROM ${sh} WHERE ${whereKey(which)};`;
  const logged = (event: string) =>
    `INSERT INTO ${log} (${logColumns(key.columns.length).map(quoteIdent).join(', ')}, event, message) VALUES (${keyCols.map((c) => `NEW.${c}`).join(', ')}, '${event}', LEFT(IFNULL(m, 'not written'), 500));`;
  // the new row written: a refused one (cut, or not written) is taken out again and logged
  const writeNew = (event: string) => `${write('NEW')}${outcome}IF p = 1 OR m IS NOT NULL THEN ${takeOut('NEW')} ${logged(event)} END IF;`;
  const declare =
    'DECLARE n INT DEFAULT 0; DECLARE i INT DEFAULT 1; DECLARE e INT DEFAULT 0; DECLARE p INT DEFAULT 0; DECLARE x INT DEFAULT 0; ' +
    'DECLARE m TEXT DEFAULT NULL; DECLARE w TEXT DEFAULT NULL; DECLARE h TEXT DEFAULT NULL; ' +
    `DECLARE CONTINUE HANDLER FOR SQLEXCEPTION BEGIN GET DIAGNOSTICS CONDITION 1 x = MYSQL_ERRNO, h = MESSAGE_TEXT; IF x IN (${RAISED_AGAIN.join(', ')}) THEN RESIGNAL; END IF; END;`;
  const on = (name: string, event: string) => `CREATE TRIGGER ${qualified({ database: t.database, table: name })} AFTER ${event} ON ${qualified(t)} FOR EACH ROW`;
  // A key the altered table cannot hold (see CaptureKey.bounds) is never written: an old one is not in the shadow, a new one is logged as refused.
  const fits = (which: 'NEW' | 'OLD') => (key.bounds ?? []).map((b) => `${which}.${quoteIdent(b.column)} BETWEEN ${boundValue(b.min)} AND ${boundValue(b.max)}`).join(' AND ');
  const ifFits = (which: 'NEW' | 'OLD', body: string, otherwise = '') => (key.bounds?.length ? `IF ${fits(which)} THEN ${body} ${otherwise ? `ELSE ${otherwise} ` : ''}END IF;` : body);
  const outOfRange = (event: string) => `SET m = 'a key value ${into.table === shadowNames(t).shadow.table ? 'the altered table' : 'the original table'} cannot hold'; ${logged(event)}`;
  // Made delete first, insert last (see createTriggers): a row is in the shadow only once every trigger that could take it out exists.
  return [
    `${on(names.delete, 'DELETE')} BEGIN ${declare} ${ifFits('OLD', `${write('OLD')}${takeOut('OLD')}`)} END`,
    `${on(names.update, 'UPDATE')} BEGIN ${declare} IF ${sameKey('NEW', 'OLD')} THEN ` +
      ifFits(
        'NEW',
        `${write('NEW')}${outcome}` +
          `IF p = 1 THEN SET h = NULL; UPDATE ${sh} SET ${assignments} WHERE ${whereKey('OLD')}; ${refusal}END IF; ` +
          `IF m IS NOT NULL THEN ${takeOut('OLD')} ${logged('update')} END IF;`,
        outOfRange('update'),
      ) +
      ` ELSE ${ifFits('OLD', `${write('OLD')}${takeOut('OLD')}`)} ${ifFits('NEW', writeNew('update'), outOfRange('update'))} END IF; END`,
    `${on(names.insert, 'INSERT')} BEGIN ${declare} ${ifFits('NEW', writeNew('insert'), outOfRange('insert'))} END`,
  ];
}

/** The capture log's columns that hold a row's key: `row_id` for a key of one column (as it always was), then `row_id_2`, … */
export function logColumns(n: number): string[] {
  return Array.from({ length: n }, (_, i) => (i === 0 ? 'row_id' : `row_id_${i + 1}`));
}

/** The key as the capture log holds it (see logColumns). */
export function logKey(key: KeyShape): KeyShape {
  return key.renamed(logColumns(key.columns.length));
}

/**
 * The capture log: one row per write the triggers could not carry into the shadow, with the
 * row's key. A key of one integer column is held as DECIMAL(20,0), any other in its columns' own
 * types, character sets and collations, so the log's key compares as the table's does.
 */
/** A bound of an integer column, as SQL: a decimal it is, checked before it goes into a trigger. */
function boundValue(n: string): string {
  if (!/^-?[0-9]+$/.test(n)) throw new TypeError(`not an integer: ${JSON.stringify(n)}`);
  return n;
}

/** Makes the capture log (see captureLogSql) unless it is there. */
export async function createCaptureLog(conn: SqlConnection, log: TableRef, keyColumns: readonly ColumnInfo[]): Promise<void> {
  await conn.execute(captureLogSql(log, keyColumns));
}

function captureLogSql(log: TableRef, keyColumns: readonly ColumnInfo[]): string {
  const integer = keyColumns.length === 1 && integerRange(keyColumns[0]!) !== null;
  const names = logColumns(keyColumns.length);
  const defs = integer
    ? ['row_id DECIMAL(20,0) NOT NULL']
    : keyColumns.map((c, i) => `${quoteIdent(names[i]!)} ${c.columnType}${c.charset ? ` CHARACTER SET ${plainWord(c.charset)} COLLATE ${plainWord(c.collation ?? '')}` : ''} NOT NULL`);
  return `CREATE TABLE IF NOT EXISTS ${qualified(log)} (
    seq BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    ${defs.join(',\n    ')},
    event VARCHAR(8) NOT NULL,
    message VARCHAR(512) NULL,
    at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    KEY row_id (${names.map(quoteIdent).join(', ')})
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;
}

/** A character set or collation name as the server reports it: letters, digits and underscores only. */
function plainWord(name: string): string {
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new TypeError(`not a character set or collation name: ${JSON.stringify(name)}`);
  return name;
}

export function dropTriggerSql(migrationId: string, t: TableRef): string[] {
  const names = captureNames(migrationId, t);
  return [names.insert, names.update, names.delete].map((n) => `DROP TRIGGER IF EXISTS ${qualified({ database: t.database, table: n })}`);
}

/** How a DDL on the live table waits for its lock: seconds per attempt, attempts, and the run's stop signal. */
export interface DdlLock {
  readonly seconds: number;
  readonly attempts: number;
  readonly stopping?: AbortSignal;
}

/**
 * Runs DDL on the live table under a short `lock_wait_timeout`: while a DDL waits for the table's
 * metadata lock every query on the table queues behind it, so it gives up after `seconds` and tries
 * again after a pause (1, 2, 4 … up to 30 s), `attempts` times in all (no more once the run is
 * `stopping`). `onWait` hears each retry.
 */
export async function withShortLockWait<T>(
  conn: SqlConnection,
  lock: DdlLock,
  fn: () => Promise<T>,
  onWait: (attempt: number, backoffSeconds: number) => void | Promise<void> = () => undefined,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      await conn.execute(`SET SESSION lock_wait_timeout = ${Math.trunc(lock.seconds)}`);
      return await fn();
    } catch (err) {
      if ((err as FerryError).errno !== ERRNO.LOCK_WAIT_TIMEOUT || attempt >= lock.attempts || lock.stopping?.aborted) throw err;
      const backoff = Math.min(30, 2 ** (attempt - 1));
      await onWait(attempt, backoff);
      await new Promise((r) => setTimeout(r, backoff * 1000));
    } finally {
      await conn.execute('SET SESSION lock_wait_timeout = DEFAULT').catch(() => undefined);
    }
  }
}

export async function dropTriggers(conn: SqlConnection, migrationId: string, t: TableRef): Promise<void> {
  for (const sql of dropTriggerSql(migrationId, t)) await conn.execute(sql);
}

/**
 * Builds `target` like the table with the ALTER applied: created LIKE the table, given the
 * table's own foreign keys (named by `fkName`; LIKE leaves them out), then altered, with the
 * clause's DROP FOREIGN KEY names changed to match.
 */
export async function buildAltered(conn: SqlConnection, t: TableRef, target: TableRef, alter: string, fkName: (name: string) => string, fill?: (conn: SqlConnection) => Promise<void>): Promise<void> {
  await conn.execute(`CREATE TABLE ${qualified(target)} LIKE ${qualified(t)}`);
  const fks = await foreignKeysOf(conn, t);
  for (const fk of fks) await conn.execute(`ALTER TABLE ${qualified(target)} ADD CONSTRAINT ${quoteIdent(fkName(fk.name))} ${fk.definition}`);
  if (fks.length) await keepIndexNames(conn, t, target);
  await fill?.(conn);
  await conn.execute(`ALTER TABLE ${qualified(target)} ${renameDroppedConstraints(alter, fkName)}`);
}

/**
 * MariaDB renames the index a new foreign key uses after the constraint: give each index of
 * `target` that `t` does not have by name the name of `t`'s index on the same columns.
 */
async function keepIndexNames(conn: SqlConnection, t: TableRef, target: TableRef): Promise<void> {
  const [mine, theirs] = await Promise.all([indexColumns(conn, t), indexColumns(conn, target)]);
  for (const [name, cols] of theirs) {
    if (mine.has(name)) continue;
    const original = [...mine].find(([n, c]) => c === cols && !theirs.has(n))?.[0];
    if (original) await conn.execute(`ALTER TABLE ${qualified(target)} RENAME INDEX ${quoteIdent(name)} TO ${quoteIdent(original)}`);
  }
}

async function indexColumns(conn: SqlConnection, t: TableRef): Promise<Map<string, string>> {
  const rows = await conn.query(
    `SELECT INDEX_NAME AS name, GROUP_CONCAT(COLUMN_NAME, '(', IFNULL(SUB_PART, ''), ')' ORDER BY SEQ_IN_INDEX) AS cols
       FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? GROUP BY INDEX_NAME`,
    [t.database, t.table],
  );
  return new Map(rows.map((r) => [str(r, 'name')!, str(r, 'cols')!]));
}

/**
 * Creates `_<table>_new` like the table with the ALTER applied and its foreign keys, the capture
 * log, then starts change capture with AFTER INSERT/UPDATE/DELETE triggers (their DDL under a
 * short lock wait). Starts over from nothing when a half-made one exists. Returns the column mapping.
 */
export async function createShadow(
  conn: SqlConnection,
  migrationId: string,
  t: TableRef,
  alter: string,
  keyColumns: string | readonly string[],
  lock: DdlLock,
  onWait?: (attempt: number, backoffSeconds: number) => void | Promise<void>,
): Promise<ColumnMapping> {
  const { shadow } = shadowNames(t);
  const columns = typeof keyColumns === 'string' ? [keyColumns] : keyColumns;
  await dropShadow(conn, migrationId, t, lock, onWait);
  await buildAltered(conn, t, shadow, alter, shadowConstraintName);
  const [tableInfo, shadowInfo] = [(await inspectTable(conn, t))!, (await inspectTable(conn, shadow))!];
  await conn.execute(captureLogSql(captureNames(migrationId, t).log, columns.map((c) => tableInfo.columns.find((x) => x.name.toLowerCase() === c.toLowerCase())!)));
  const mapping = columnMapping(tableInfo, shadowInfo, alter);
  const key = captureKey(tableInfo, shadowInfo, mapping, columns);
  // Preflight refuses an ALTER that leaves none (see sharedCopyKey)
  if (!key) throw new VerificationFailed(`${shadow.table} has no unique key on (${columns.join(', ')}) alone: the ALTER must keep one, ferry copies by it`);
  await createTriggers(conn, migrationId, t, key, mapping, lock, onWait);
  return mapping;
}

/** Creates the three capture triggers (see triggerSql) under a short lock wait, with the sql_mode they run with; ones already there are dropped first. */
export async function createTriggers(
  conn: SqlConnection,
  migrationId: string,
  t: TableRef,
  key: CaptureKey,
  mapping: ColumnMapping,
  lock: DdlLock,
  onWait?: (attempt: number, backoffSeconds: number) => void | Promise<void>,
  into?: TableRef,
): Promise<void> {
  await withShortLockWait(conn, lock, async () => {
    // any of them left by an attempt that timed out half-way, or a run stopped before it recorded them: made again
    await dropTriggers(conn, migrationId, t);
    await conn.execute(`SET @ferry_sql_mode = @@SESSION.sql_mode, SESSION sql_mode = '${TRIGGER_SQL_MODE}'`);
    try {
      for (const sql of triggerSql(migrationId, t, key, mapping, into)) await conn.execute(sql);
    } finally {
      await conn.execute('SET SESSION sql_mode = @ferry_sql_mode');
    }
  }, onWait);
}

/**
 * Change capture from the table into `into`, a table that exists already (a revert's: the altered
 * table's writes into the original), with its capture log: the same triggers as createShadow's.
 */
export async function captureInto(
  conn: SqlConnection,
  migrationId: string,
  t: TableRef,
  into: TableRef,
  keyColumns: readonly ColumnInfo[],
  key: CaptureKey,
  mapping: ColumnMapping,
  lock: DdlLock,
  onWait?: (attempt: number, backoffSeconds: number) => void | Promise<void>,
): Promise<void> {
  await createCaptureLog(conn, captureNames(migrationId, t).log, keyColumns);
  await createTriggers(conn, migrationId, t, key, mapping, lock, onWait, into);
}

/** Drops ferry's triggers on the table (first, under a short lock wait), then its shadow and capture log, leaving the table as it was. */
export async function dropShadow(
  conn: SqlConnection,
  migrationId: string,
  t: TableRef,
  lock: DdlLock,
  onWait?: (attempt: number, backoffSeconds: number) => void | Promise<void>,
): Promise<void> {
  await withShortLockWait(conn, lock, async () => {
    await dropTriggers(conn, migrationId, t);
    await dropWindowAnchors(conn, migrationId, t);
  }, onWait);
  await conn.execute(`DROP TABLE IF EXISTS ${qualified(shadowNames(t).shadow)}`);
  await conn.execute(`DROP TABLE IF EXISTS ${qualified(captureNames(migrationId, t).log)}`);
  // the revert window's log, made just before a swap that did not happen
  await conn.execute(`DROP TABLE IF EXISTS ${qualified(windowNames(migrationId, t).log)}`);
}

/** Keys of rows the capture log holds (writes the shadow refused), with the first reason for each, lowest first. */
export async function loggedRows(conn: SqlConnection, migrationId: string, t: TableRef, key: KeyShape, limit: number): Promise<{ id: KeyValue; event: string; message: string | null }[]> {
  const log = captureNames(migrationId, t).log;
  const exists = await inspectTable(conn, log);
  if (!exists) return [];
  const inLog = logKey(key);
  const cols = logColumns(key.columns.length).map(quoteIdent).join(', ');
  const rows = await conn.query(`SELECT ${inLog.select()}, MIN(event) AS event, MIN(message) AS message FROM ${qualified(log)} GROUP BY ${cols} ORDER BY ${inLog.orderBy()} LIMIT ${Math.trunc(limit)}`);
  return rows.map((r) => ({ id: inLog.fromRow(r), event: str(r, 'event')!, message: str(r, 'message') }));
}

/**
 * After a RENAME: each row the capture log holds (a write the triggers could not carry in the last
 * instant before it) that `tables.targetTable` lacks is written to it from `tables.sourceTable`,
 * strictly (see insertMissing), and forgotten. Rows the target has are the application's by now and
 * are left alone. Returns the rows it refused, with the database's reason.
 */
export async function writeLateLogged(conn: SqlConnection, migrationId: string, t: TableRef, tables: CopyTables): Promise<string[]> {
  const key = keyOf(tables);
  const refused: string[] = [];
  for (;;) {
    const logged = await loggedRows(conn, migrationId, t, key, 100);
    if (logged.length === 0) return refused;
    for (const row of logged) {
      try {
        await insertMissing(tables, row.id);
      } catch (err) {
        refused.push(`${row.id} (${(err as Error).message.replace(/^[^:]*: statement failed: /, '')})`);
      }
      await clearLogged(conn, migrationId, t, key, { lo: row.id, hi: row.id });
    }
  }
}

/** Forgets logged writes of keys in the range (they were just written again). */
export async function clearLogged(conn: SqlConnection, migrationId: string, t: TableRef, key: KeyShape, range: KeyRange): Promise<void> {
  const inLog = logKey(key);
  // an integer key is held as DECIMAL(20,0): compared as one, so an id of 20 digits is exact
  const where = inLog.isInteger && range.lo !== null && !range.loExcluded
    ? { sql: 'row_id BETWEEN CAST(? AS DECIMAL(20,0)) AND CAST(? AS DECIMAL(20,0))', params: [range.lo, range.hi] }
    : inLog.within(range);
  await conn.execute(`DELETE FROM ${qualified(captureNames(migrationId, t).log)} WHERE ${where.sql}`, where.params);
}

/** Whether the swap already happened: the shadow is gone and the old table is there. */
export async function swapDone(conn: SqlConnection, t: TableRef): Promise<boolean> {
  const { shadow, old } = shadowNames(t);
  return !(await inspectTable(conn, shadow)) && (await inspectTable(conn, old)) !== null;
}

/**
 * The cut-over itself: the shadow's AUTO_INCREMENT raised to the table's when that is higher (ids
 * continue above every id the table ever handed out) unless the ALTER sets AUTO_INCREMENT itself:
 * then the shadow's stays, as a plain ALTER leaves it (the value set, or above the highest id
 * present when that is higher), then one atomic `RENAME TABLE t TO _t_old, _t_new TO t`, under the short lock wait the
 * caller set. A failed attempt changes nothing. Returns the shadow's AUTO_INCREMENT.
 */
export async function swapOnce(conn: SqlConnection, t: TableRef, alter: string): Promise<string | null> {
  const { shadow, old } = shadowNames(t);
  const kept = await raiseShadowAutoIncrement(conn, t, alter);
  await conn.execute(`RENAME TABLE ${qualified(t)} TO ${qualified(old)}, ${qualified(shadow)} TO ${qualified(t)}`);
  return kept;
}

/** The shadow's AUTO_INCREMENT raised to the table's when that is higher and the ALTER sets none (see swapOnce); returns the shadow's. */
export async function raiseShadowAutoIncrement(conn: SqlConnection, t: TableRef, alter: string): Promise<string | null> {
  const { shadow } = shadowNames(t);
  const [ai, mine] = [await autoIncrementOf(conn, t), await autoIncrementOf(conn, shadow)];
  if (ai !== null && !setsAutoIncrement(alter) && (mine === null || BigInt(ai) > BigInt(mine))) {
    await setAutoIncrement(conn, shadow, BigInt(ai));
    return ai;
  }
  return mine;
}

/**
 * rewriteLogged for a session that holds `LOCK TABLES` on the table, the shadow and the capture
 * log, where a transaction would let go of the lock: each logged row is deleted from the shadow
 * and written again from the table, one statement at a time (nothing else writes either table
 * meanwhile). A row the shadow refuses fails with the database's reason; it stays logged.
 */
export async function rewriteLoggedLocked(conn: SqlConnection, migrationId: string, t: CopyTables): Promise<number> {
  const key = keyOf(t);
  let n = 0;
  for (;;) {
    const logged = await loggedRows(conn, migrationId, t.sourceTable, key, 100);
    if (logged.length === 0) return n;
    for (const row of logged) {
      const it = key.equals(row.id);
      await conn.execute(`DELETE FROM ${qualified(t.targetTable)} WHERE ${it.sql}`, it.params);
      try {
        await writeFromSource(conn, t, [row.id]);
      } catch (err) {
        if (!(err instanceof DatabaseError)) throw err;
        throw new VerificationFailed(
          `the application's ${row.event} of ${key.isInteger ? 'id' : `key (${key.names})`} ${row.id} in ${t.sourceTable.table} cannot be written to ${t.targetTable.table}: ${err.message.replace(/^[^:]*: statement failed: /, '')}`,
          { cause: err },
        );
      }
      await clearLogged(conn, migrationId, t.sourceTable, key, { lo: row.id, hi: row.id });
      n++;
    }
  }
}

/**
 * Writes again, strictly, every row the triggers could not write to the shadow (see triggerSql),
 * from the table as it is now, and forgets them: a clash that has since gone away (two rows that
 * swapped values) heals. One the altered table still refuses fails with the application's id and
 * the database's reason, and nothing is deleted. Returns how many rows were written again.
 */
export async function rewriteLogged(conn: SqlConnection, migrationId: string, t: CopyTables): Promise<number> {
  const key = keyOf(t);
  let n = 0;
  for (;;) {
    const logged = await loggedRows(conn, migrationId, t.sourceTable, key, 100);
    if (logged.length === 0) return n;
    for (const row of logged) {
      const only = { lo: row.id, hi: row.id };
      try {
        await repairRange(conn, t, only, () => clearLogged(conn, migrationId, t.sourceTable, key, only));
      } catch (err) {
        if (!(err instanceof VerificationFailed)) throw err;
        throw new VerificationFailed(
          `the application's ${row.event} of ${key.isInteger ? 'id' : `key (${key.names})`} ${row.id} in ${t.sourceTable.table} could not be written to ${t.targetTable.table} (${row.message ?? 'the row was refused'}), and writing it again fails: ${err.message}`,
          { cause: err },
        );
      }
      n++;
    }
  }
}
