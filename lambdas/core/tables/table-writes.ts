import { KeyShape } from '../keys.ts';
import type { Id } from '../ids.ts';
import { qualified, quoteIdent, type TableRef } from '../identifiers.ts';
import { scalar, str, type SqlConnection } from '../ports/sql.ts';

/** Ids per DELETE statement: keeps each statement short and its locks brief. */
const DELETE_IDS_PER_STATEMENT = 5000;

/** Sets the table's AUTO_INCREMENT. The value is a BigInt computed by ferry, never text from the input. */
export async function setAutoIncrement(conn: SqlConnection, ref: TableRef, value: bigint): Promise<void> {
  // A DDL value cannot be a placeholder.
  await conn.execute(`ALTER TABLE ${qualified(ref)} AUTO_INCREMENT = ${value.toString()}`);
}

export async function dropTableIfExists(conn: SqlConnection, ref: TableRef): Promise<void> {
  await conn.execute(`DROP TABLE IF EXISTS ${qualified(ref)}`);
}

/** The first `limit` ids above `after` (from the lowest when null), in order. */
export async function idsAfter(conn: SqlConnection, ref: TableRef, idColumn: string, after: Id | null, limit: number, upTo?: Id): Promise<Id[]> {
  const id = quoteIdent(idColumn);
  const conditions = [...(after === null ? [] : [`${id} > ?`]), ...(upTo === undefined ? [] : [`${id} <= ?`])];
  const params = [...(after === null ? [] : [after]), ...(upTo === undefined ? [] : [upTo]), limit];
  const rows = await conn.query(`SELECT ${id} AS id FROM ${qualified(ref)}${conditions.length ? ` WHERE ${conditions.join(' AND ')}` : ''} ORDER BY ${id} LIMIT ?`, params);
  return rows.map((r) => str(r, 'id')!);
}

/** Deletes exactly these ids, a few thousand per statement. Returns the rows deleted. */
export async function deleteIds(conn: SqlConnection, ref: TableRef, idColumn: string, ids: readonly Id[]): Promise<number> {
  let deleted = 0;
  for (let i = 0; i < ids.length; i += DELETE_IDS_PER_STATEMENT) {
    const batch = ids.slice(i, i + DELETE_IDS_PER_STATEMENT);
    const { affectedRows } = await conn.execute(`DELETE FROM ${qualified(ref)} WHERE ${quoteIdent(idColumn)} IN (${batch.map(() => '?').join(', ')})`, batch);
    deleted += affectedRows;
  }
  return deleted;
}

/** Deletes the `limit` rows with the lowest ids. Returns the rows deleted. */
export async function deleteLowest(conn: SqlConnection, ref: TableRef, key: KeyShape | string, limit: number): Promise<number> {
  const { affectedRows } = await conn.execute(`DELETE FROM ${qualified(ref)} ORDER BY ${KeyShape.of(key).orderBy()} LIMIT ${Math.trunc(limit)}`);
  return affectedRows;
}

export async function countRows(conn: SqlConnection, ref: TableRef): Promise<string> {
  return (await scalar(conn, `SELECT COUNT(*) FROM ${qualified(ref)}`)) ?? '0';
}

export async function truncateTable(conn: SqlConnection, ref: TableRef): Promise<void> {
  await conn.execute(`TRUNCATE TABLE ${qualified(ref)}`);
}

/**
 * Runs `fn` while this session holds `LOCK TABLES … WRITE` on the table (waiting at most
 * `lockWaitSeconds` for it), and always unlocks. The connection must be one of its own.
 */
export async function withWriteLock<T>(conn: SqlConnection, ref: TableRef, lockWaitSeconds: number, fn: () => Promise<T>): Promise<T> {
  await conn.execute(`SET SESSION lock_wait_timeout = ${Math.trunc(lockWaitSeconds)}`);
  await conn.execute(`LOCK TABLES ${qualified(ref)} WRITE`);
  try {
    return await fn();
  } finally {
    await conn.execute('UNLOCK TABLES').catch(() => undefined);
  }
}
