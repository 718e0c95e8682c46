import { InvalidInput, TransientError, type FerryError } from '../errors.ts';
import { isPlainName, qualified, type TableRef } from '../identifiers.ts';
import { scalar, str, type SqlConnection } from '../ports/sql.ts';
import { inspectTable } from './inspector.ts';
import { captureNames, FERRY_TRIGGER, raiseShadowAutoIncrement, rewriteLoggedLocked, shadowNames } from './shadow.ts';
import type { CopyTables } from './copier.ts';

/**
 * A trigger of the table's own (not ferry's), as information_schema.TRIGGERS holds it: all it takes
 * to make it again, the same, on the altered table at the swap.
 */
export interface OwnTrigger {
  readonly name: string;
  readonly timing: 'BEFORE' | 'AFTER';
  readonly event: 'INSERT' | 'UPDATE' | 'DELETE';
  /** Its place among the table's triggers of the same timing and event, from 1. */
  readonly order: number;
  readonly statement: string;
  /** `user@host`. */
  readonly definer: string;
  readonly sqlMode: string;
  readonly characterSetClient: string;
  readonly collationConnection: string;
}

/** ferry's stand-ins for the table's own triggers while they move (see anchorOf). */
const FERRY_ANCHOR = /^_ferry_[0-9a-f]{12}_k[0-9]+$/;
const TIMINGS = new Set(['BEFORE', 'AFTER']);
const EVENTS = new Set(['INSERT', 'UPDATE', 'DELETE']);
const CHARSET_NAME = /^[A-Za-z0-9_]{1,64}$/;

/** The table's own triggers, each event's in the order they fire (BEFORE, then AFTER, each by ACTION_ORDER). */
export async function ownTriggers(conn: SqlConnection, t: TableRef): Promise<OwnTrigger[]> {
  const rows = await conn.query(
    'SELECT TRIGGER_NAME AS name, ACTION_TIMING AS timing, EVENT_MANIPULATION AS event, ACTION_ORDER AS ord, ACTION_STATEMENT AS statement, DEFINER AS definer, ' +
      'SQL_MODE AS sql_mode, CHARACTER_SET_CLIENT AS cs, COLLATION_CONNECTION AS coll FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?',
    [t.database, t.table],
  );
  const rank = (tr: OwnTrigger) => ['INSERT', 'UPDATE', 'DELETE'].indexOf(tr.event) * 2 + (tr.timing === 'BEFORE' ? 0 : 1);
  return rows
    .map((r) => ({
      name: str(r, 'name')!,
      timing: str(r, 'timing')! as OwnTrigger['timing'],
      event: str(r, 'event')! as OwnTrigger['event'],
      order: Number(str(r, 'ord') ?? '0'),
      statement: str(r, 'statement')!,
      definer: str(r, 'definer')!,
      sqlMode: str(r, 'sql_mode') ?? '',
      characterSetClient: str(r, 'cs')!,
      collationConnection: str(r, 'coll')!,
    }))
    .filter((tr) => !FERRY_TRIGGER.test(tr.name) && !FERRY_ANCHOR.test(tr.name))
    .sort((a, b) => rank(a) - rank(b) || a.order - b.order);
}

/** `'user'@'host'` of a definer, or null when it cannot be written back safely. */
function definerSql(definer: string): string | null {
  const at = definer.lastIndexOf('@');
  if (at < 0 || /['\\`\0]/.test(definer)) return null;
  return `'${definer.slice(0, at)}'@'${definer.slice(at + 1)}'`;
}

/** `CREATE DEFINER=… TRIGGER` of the trigger, on `on` and named `name` (its own name unless given). */
export function createOwnTriggerSql(tr: OwnTrigger, on: TableRef, name = tr.name): string {
  const definer = definerSql(tr.definer);
  if (!definer || !TIMINGS.has(tr.timing) || !EVENTS.has(tr.event)) throw new TypeError(`trigger ${JSON.stringify(tr.name)} cannot be made again as it is`);
  return `CREATE DEFINER=${definer} TRIGGER ${qualified({ database: on.database, table: name })} ${tr.timing} ${tr.event} ON ${qualified(on)} FOR EACH ROW ${tr.statement}`;
}

/**
 * Makes the trigger on `on` with the settings it was made with: its SQL mode (which decides what
 * `||` or `"x"` mean in its body) and its connection collation; its client character set too when
 * its text is ASCII (otherwise the text is sent, and declared, as UTF-8, so no byte of it changes).
 * The session's settings are put back after.
 */
export async function createOwnTrigger(conn: SqlConnection, tr: OwnTrigger, on: TableRef, name = tr.name): Promise<void> {
  if (!CHARSET_NAME.test(tr.characterSetClient) || !CHARSET_NAME.test(tr.collationConnection)) throw new TypeError(`trigger ${JSON.stringify(tr.name)} has an unknown character set`);
  const [before] = await conn.query('SELECT @@SESSION.sql_mode AS m, @@SESSION.character_set_client AS c, @@SESSION.collation_connection AS k');
  const ascii = /^[\x00-\x7f]*$/.test(tr.statement);
  try {
    await conn.execute(`SET SESSION sql_mode = ?, SESSION collation_connection = ?${ascii ? ', SESSION character_set_client = ?' : ''}`, [tr.sqlMode, tr.collationConnection, ...(ascii ? [tr.characterSetClient] : [])]);
    await conn.execute(createOwnTriggerSql(tr, on, name));
  } finally {
    await conn.execute('SET SESSION sql_mode = ?, SESSION collation_connection = ?, SESSION character_set_client = ?', [str(before!, 'm') ?? '', str(before!, 'k')!, str(before!, 'c')!]);
  }
}

async function dropOwnTriggers(conn: SqlConnection, database: string, triggers: readonly OwnTrigger[]): Promise<void> {
  for (const tr of triggers) await conn.execute(`DROP TRIGGER IF EXISTS ${qualified({ database, table: tr.name })}`);
}

/** Refuses, before anything is written, a trigger whose name or definer ferry would not write back into SQL. */
export function checkOwnTriggers(triggers: readonly OwnTrigger[]): void {
  for (const tr of triggers) {
    if (!isPlainName(tr.name)) throw new InvalidInput('table.table', `trigger ${JSON.stringify(tr.name)} of the table has a name ferry does not write into SQL; rename it first`);
    if (!definerSql(tr.definer)) throw new InvalidInput('table.table', `trigger ${tr.name} has definer ${JSON.stringify(tr.definer)}, which ferry does not write into SQL; make it again with another definer first`);
  }
}

/** "Unknown column … in 'NEW'": a trigger's body names a column the table does not have. */
const BAD_FIELD = 1054;

/**
 * Makes each trigger on the scratch table (the altered shape) under a name of its own, with its
 * definer, SQL mode and body, in order, takes a `LOCK TABLES … WRITE` on it, and drops them all
 * again: the server itself says whether the body still fits the altered table (a column the ALTER
 * drops or renames), whether ferry's user may make it again at the swap (another definer takes
 * SUPER or SET USER), and whether it may hold the lock the swap holds.
 */
export async function mayMoveOwnTriggers(conn: SqlConnection, triggers: readonly OwnTrigger[], scratch: TableRef): Promise<void> {
  if (triggers.length === 0) return;
  const names = triggers.flatMap((_, i) => [`${scratch.table}_o${i}`, `${scratch.table}_k${i}`]);
  try {
    for (const [i, tr] of triggers.entries()) {
      try {
        await createOwnTrigger(conn, tr, scratch, names[2 * i]);
        await createOwnTrigger(conn, anchorOf(tr, scratch.table, scratch, i).trigger, scratch, names[2 * i + 1]);
      } catch (err) {
        const words = (err as Error).message.replace(/^[^:]*: statement failed: /, '');
        if ((err as FerryError).errno === BAD_FIELD) {
          throw new InvalidInput('alter', `trigger ${tr.name} of the table cannot be made on the altered table, as the swap must: ${words}; change the trigger first, or the clause`);
        }
        throw new InvalidInput(
          'table.connection',
          `"${conn.name}"'s user may not make trigger ${tr.name} (definer ${tr.definer}) again, as the swap must on the altered table (${words}): ` +
            `make ferry's user its definer, or GRANT SET USER (SUPER before MariaDB 10.5.2) to it`,
        );
      }
    }
    try {
      await conn.execute(`LOCK TABLES ${qualified(scratch)} WRITE`);
    } catch (err) {
      const words = (err as Error).message.replace(/^[^:]*: statement failed: /, '');
      throw new InvalidInput('table.connection', `"${conn.name}"'s user may not lock the table, as the swap must to move its triggers (${words}): GRANT LOCK TABLES ON \`${scratch.database}\`.* TO ferry's user`);
    } finally {
      await conn.execute('UNLOCK TABLES');
    }
  } finally {
    for (const name of names) await conn.execute(`DROP TRIGGER IF EXISTS ${qualified({ database: scratch.database, table: name })}`);
  }
}

/**
 * A stand-in for a trigger while it moves: the same timing, event, definer, SQL mode and body, but
 * the body never runs (`IF FALSE THEN … END IF`). A write of the application that queues on the
 * table while its triggers move prepares with the tables the table's triggers use; if the altered
 * table's triggers then use one it did not prepare, MariaDB fails the write ("Table … doesn't
 * exist", 1146). With its stand-ins left on the table, a queued write has prepared every table
 * the moved triggers use.
 */
export function anchorOf(tr: OwnTrigger, migrationId: string, t: TableRef, i: number): { trigger: OwnTrigger; name: string } {
  // a new line before the end: a body that ends in a `--` or `#` comment does not swallow it
  return { trigger: { ...tr, statement: `IF FALSE THEN ${tr.statement.replace(/[\s;]+$/, '')}\n; END IF` }, name: `${anchorPrefix(migrationId, t)}${i}` };
}

/** `_ferry_<tag>_k`: the stand-ins' names, numbered. */
function anchorPrefix(migrationId: string, t: TableRef): string {
  return `${captureNames(migrationId, t).insert.slice(0, -'ins'.length)}k`;
}

/** Puts the stand-ins of the table's own triggers on it (any left by an earlier attempt made again). */
export async function createAnchors(conn: SqlConnection, migrationId: string, t: TableRef, triggers: readonly OwnTrigger[]): Promise<void> {
  await dropAnchors(conn, migrationId, t);
  for (const [i, tr] of triggers.entries()) {
    const { trigger, name } = anchorOf(tr, migrationId, t, i);
    await createOwnTrigger(conn, trigger, t, name);
  }
}

/** Drops the migration's stand-ins wherever they are in the table's database (after the swap: on `_t_old`). */
export async function dropAnchors(conn: SqlConnection, migrationId: string, t: TableRef): Promise<void> {
  const prefix = anchorPrefix(migrationId, t);
  const rows = await conn.query('SELECT TRIGGER_NAME AS name FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND LEFT(TRIGGER_NAME, ?) = ?', [t.database, prefix.length, prefix]);
  for (const name of rows.map((r) => str(r, 'name')!).filter((n) => FERRY_ANCHOR.test(n))) {
    await conn.execute(`DROP TRIGGER IF EXISTS ${qualified({ database: t.database, table: name })}`);
  }
}

/**
 * Moves the table's own triggers from `from` to `to` under `LOCK TABLES from WRITE, to WRITE`: no
 * write of the application reaches either table between the triggers leaving one and reaching the
 * other, so none is missed and none fires twice. `inside` runs first under the lock, `whileLocked`
 * after the move, before the lock is let go; a failure of either puts the triggers back on `from`
 * first.
 */
export async function moveOwnTriggers<T>(
  conn: SqlConnection,
  triggers: readonly OwnTrigger[],
  from: TableRef,
  to: TableRef,
  options: { inside?: () => Promise<T>; whileLocked?: () => Promise<void>; alsoLocked?: readonly TableRef[] } = {},
): Promise<T | undefined> {
  const locked = [...(qualified(from) === qualified(to) ? [from] : [from, to]), ...(options.alsoLocked ?? [])];
  await conn.execute(`LOCK TABLES ${locked.map((x) => `${qualified(x)} WRITE`).join(', ')}`);
  try {
    const out = await options.inside?.();
    try {
      await dropOwnTriggers(conn, from.database, triggers);
      for (const tr of triggers) await createOwnTrigger(conn, tr, to);
      await options.whileLocked?.();
    } catch (err) {
      await dropOwnTriggers(conn, from.database, triggers);
      for (const tr of triggers) await createOwnTrigger(conn, tr, from);
      throw err;
    }
    return out;
  } finally {
    // a connection that fails here has lost its session, and its locks with it
    await conn.execute('UNLOCK TABLES').catch(() => undefined);
  }
}

/** How long the locked table waits to see the RENAME queued behind its lock before it gives up (and lets go). */
const RENAME_QUEUED_WITHIN_MS = 3000;

/**
 * The cut-over of a table with triggers of its own. MariaDB refuses `RENAME TABLE` under LOCK
 * TABLES, and renaming one table at a time would leave `t` missing for a moment, so, as gh-ost
 * does: one session locks `t` and `_t_new` (`LOCK TABLES … WRITE`), raises the shadow's
 * AUTO_INCREMENT as `swapOnce` does and moves the triggers onto the shadow; a second session
 * (`renamer`) sends the atomic `RENAME TABLE t TO _t_old, _t_new TO t`, which queues behind the
 * lock; once it is seen queued the lock is let go, and the RENAME, a pending exclusive lock, goes
 * before every write of the application waiting with it. The application's writes wait out the
 * lock (milliseconds) and land on the altered table, with its triggers. A RENAME not seen queued
 * in time, or failing, is taken back and the triggers are put back on `t`: nothing changes.
 * Returns the shadow's AUTO_INCREMENT.
 */
export async function swapKeepingTriggers(
  conn: SqlConnection,
  renamer: SqlConnection,
  tables: CopyTables,
  migrationId: string,
  alter: string,
  triggers: readonly OwnTrigger[],
  lockSeconds: number,
): Promise<string | null> {
  const t = tables.sourceTable;
  const { shadow, old } = shadowNames(t);
  const renamerId = await scalar(renamer, 'SELECT CONNECTION_ID()');
  await renamer.execute(`SET SESSION lock_wait_timeout = ${Math.trunc(lockSeconds) + Math.ceil(RENAME_QUEUED_WITHIN_MS / 1000) + 5}`);
  let rename: Promise<unknown> | null = null;
  const kept = await moveOwnTriggers(conn, triggers, t, shadow, {
    alsoLocked: [captureNames(migrationId, t).log],
    // a write the triggers logged since the last look is written to the shadow now, before its triggers are there to fire a second time
    inside: async () => {
      await rewriteLoggedLocked(conn, migrationId, tables);
      return raiseShadowAutoIncrement(conn, t, alter);
    },
    whileLocked: async () => {
      rename = renamer.execute(`RENAME TABLE ${qualified(t)} TO ${qualified(old)}, ${qualified(shadow)} TO ${qualified(t)}`);
      rename.catch(() => undefined);
      const until = Date.now() + RENAME_QUEUED_WITHIN_MS;
      for (;;) {
        const queued = await scalar(conn, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ? AND STATE LIKE 'Waiting for table metadata lock%'", [renamerId]);
        if (queued === '1') return;
        if (Date.now() > until) {
          // never let it run once the triggers go back: stopped while the lock still holds it
          await conn.execute(`KILL QUERY ${Number(renamerId)}`).catch(() => undefined);
          await rename.catch(() => undefined);
          throw new TransientError(`the RENAME of ${t.table} was not seen waiting for the lock within ${RENAME_QUEUED_WITHIN_MS / 1000} s; nothing was renamed, the triggers stay on ${t.table}`);
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    },
  });
  try {
    await rename;
  } catch (err) {
    // not renamed: the triggers go back to the table the application writes
    await moveOwnTriggers(conn, triggers, shadow, t);
    throw err;
  }
  return kept ?? null;
}

/**
 * Puts the table's own triggers back on `t` in their order when a run stopped during the swap
 * left some of them off it (on `_t_new`), under the same lock. Returns the names it put back.
 */
export async function restoreOwnTriggers(conn: SqlConnection, t: TableRef, triggers: readonly OwnTrigger[]): Promise<string[]> {
  const on = await ownTriggersOn(conn, t, triggers);
  const missing = triggers.filter((tr) => !on.has(tr.name)).map((tr) => tr.name);
  if (missing.length === 0) return [];
  const { shadow } = shadowNames(t);
  await moveOwnTriggers(conn, triggers, (await inspectTable(conn, shadow)) ? shadow : t, t);
  return missing;
}

/** Which of the triggers are on the table now, by name. */
export async function ownTriggersOn(conn: SqlConnection, t: TableRef, triggers: readonly OwnTrigger[]): Promise<Set<string>> {
  const names = new Set(triggers.map((tr) => tr.name));
  return new Set((await ownTriggers(conn, t)).map((tr) => tr.name).filter((n) => names.has(n)));
}
