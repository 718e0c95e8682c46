import { createHash } from 'node:crypto';
import { qualified, quoteIdent, type TableRef } from '../identifiers.ts';
import type { SqlConnection } from '../ports/sql.ts';
import { autoIncrementOf, copiedColumns, inspectTable, type TableInfo } from './inspector.ts';
import { setAutoIncrement } from './table-writes.ts';

/** The names ferry gives the altered copy and, after the swap, the original. */
export function shadowNames(t: TableRef): { shadow: TableRef; old: TableRef } {
  return { shadow: { database: t.database, table: `_${t.table}_new` }, old: { database: t.database, table: `_${t.table}_old` } };
}

/** Trigger names: fixed length whatever the table's, and recognisably ferry's. */
export function triggerNames(migrationId: string, t: TableRef): { insert: string; update: string; delete: string } {
  const tag = createHash('sha1').update(`${migrationId}\0${t.database}\0${t.table}`).digest('hex').slice(0, 12);
  return { insert: `_ferry_${tag}_ins`, update: `_ferry_${tag}_upd`, delete: `_ferry_${tag}_del` };
}

export const FERRY_TRIGGER = /^_ferry_[0-9a-f]{12}_(ins|upd|del)$/;

/**
 * Change capture into the shadow: every write to the table is replayed on the shadow in the same
 * transaction. REPLACE makes the shadow row equal the table's, whatever the copy did before; an
 * update that changes the key first removes the row under the old key.
 */
export function triggerSql(migrationId: string, t: TableRef, shadow: TableRef, idColumn: string, columns: readonly string[]): string[] {
  const names = triggerNames(migrationId, t);
  const cols = columns.map(quoteIdent).join(', ');
  const values = (row: 'NEW' | 'OLD') => columns.map((c) => `${row}.${quoteIdent(c)}`).join(', ');
  const id = quoteIdent(idColumn);
  const table = qualified(t);
  const sh = qualified(shadow);
  return [
    `CREATE TRIGGER ${qualified({ database: t.database, table: names.insert })} AFTER INSERT ON ${table} FOR EACH ROW REPLACE INTO ${sh} (${cols}) VALUES (${values('NEW')})`,
    `CREATE TRIGGER ${qualified({ database: t.database, table: names.update })} AFTER UPDATE ON ${table} FOR EACH ROW BEGIN ` +
      `DELETE IGNORE FROM ${sh} WHERE NOT (OLD.${id} <=> NEW.${id}) AND ${id} <=> OLD.${id}; ` +
      `REPLACE INTO ${sh} (${cols}) VALUES (${values('NEW')}); END`,
    `CREATE TRIGGER ${qualified({ database: t.database, table: names.delete })} AFTER DELETE ON ${table} FOR EACH ROW DELETE IGNORE FROM ${sh} WHERE ${id} <=> OLD.${id}`,
  ];
}

export function dropTriggerSql(migrationId: string, t: TableRef): string[] {
  const names = triggerNames(migrationId, t);
  return [names.insert, names.update, names.delete].map((n) => `DROP TRIGGER IF EXISTS ${qualified({ database: t.database, table: n })}`);
}

export async function dropTriggers(conn: SqlConnection, migrationId: string, t: TableRef): Promise<void> {
  for (const sql of dropTriggerSql(migrationId, t)) await conn.execute(sql);
}

/** Columns copied and compared: those the table and its altered shadow share, in the table's order. */
export async function sharedColumns(table: TableInfo, conn: SqlConnection): Promise<string[]> {
  const shadow = await inspectTable(conn, shadowNames(table.ref).shadow);
  const own = copiedColumns(table);
  if (!shadow) return own;
  const theirs = new Set(copiedColumns(shadow));
  return own.filter((c) => theirs.has(c));
}

/**
 * Creates `_<table>_new` like the table with the ALTER applied, then starts change capture with
 * AFTER INSERT/UPDATE/DELETE triggers. Starts over from nothing when a half-made one exists.
 * Returns the columns the triggers carry.
 */
export async function createShadow(conn: SqlConnection, migrationId: string, t: TableRef, alter: string, idColumn: string): Promise<string[]> {
  const { shadow } = shadowNames(t);
  await dropShadow(conn, migrationId, t);
  await conn.execute(`CREATE TABLE ${qualified(shadow)} LIKE ${qualified(t)}`);
  await conn.execute(`ALTER TABLE ${qualified(shadow)} ${alter}`);
  const columns = await sharedColumns((await inspectTable(conn, t))!, conn);
  for (const sql of triggerSql(migrationId, t, shadow, idColumn, columns)) await conn.execute(sql);
  return columns;
}

/** Drops ferry's triggers on the table and its shadow, leaving the table as it was. */
export async function dropShadow(conn: SqlConnection, migrationId: string, t: TableRef): Promise<void> {
  await dropTriggers(conn, migrationId, t);
  await conn.execute(`DROP TABLE IF EXISTS ${qualified(shadowNames(t).shadow)}`);
}

/**
 * Applies the ALTER to an empty scratch copy of the table, so the database itself judges it, and
 * removes the scratch table whatever happens. Returns the altered table's shape, or the
 * database's refusal.
 */
export async function tryAlter(conn: SqlConnection, t: TableRef, alter: string): Promise<{ ok: true; altered: TableInfo } | { ok: false; error: string }> {
  const scratch = { database: t.database, table: `_${t.table}_chk` };
  await conn.execute(`DROP TABLE IF EXISTS ${qualified(scratch)}`);
  try {
    await conn.execute(`CREATE TABLE ${qualified(scratch)} LIKE ${qualified(t)}`);
    try {
      await conn.execute(`ALTER TABLE ${qualified(scratch)} ${alter}`);
    } catch (err) {
      return { ok: false, error: (err as Error).message.replace(/^[^:]*: statement failed: /, '') };
    }
    return { ok: true, altered: (await inspectTable(conn, scratch))! };
  } finally {
    await conn.execute(`DROP TABLE IF EXISTS ${qualified(scratch)}`);
  }
}

/** Whether the swap already happened: the shadow is gone and the old table is there. */
export async function swapDone(conn: SqlConnection, t: TableRef): Promise<boolean> {
  const { shadow, old } = shadowNames(t);
  return !(await inspectTable(conn, shadow)) && (await inspectTable(conn, old)) !== null;
}

/**
 * One attempt at the cut-over: the shadow's AUTO_INCREMENT raised to the table's (so ids continue
 * above every id the table ever handed out, not only above its max), then one atomic
 * `RENAME TABLE t TO _t_old, _t_new TO t`. Every DDL waits at most `lockWaitSeconds` for the
 * table's lock, since queries on the table queue behind a waiting one. A failed attempt changes
 * nothing. Returns the AUTO_INCREMENT carried over (null when the table has none).
 */
export async function swapOnce(conn: SqlConnection, t: TableRef, lockWaitSeconds: number): Promise<string | null> {
  const { shadow, old } = shadowNames(t);
  try {
    await conn.execute(`SET SESSION lock_wait_timeout = ${Math.trunc(lockWaitSeconds)}`);
    const ai = await autoIncrementOf(conn, t);
    if (ai !== null) await setAutoIncrement(conn, shadow, BigInt(ai));
    await conn.execute(`RENAME TABLE ${qualified(t)} TO ${qualified(old)}, ${qualified(shadow)} TO ${qualified(t)}`);
    return ai;
  } finally {
    await conn.execute('SET SESSION lock_wait_timeout = DEFAULT').catch(() => undefined);
  }
}
