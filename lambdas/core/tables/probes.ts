import { str, type SqlConnection } from '../ports/sql.ts';
import { runThrottleQuery } from '../throttle-query.ts';

export async function threadsRunning(conn: SqlConnection): Promise<number> {
  const rows = await conn.query("SHOW GLOBAL STATUS LIKE 'Threads_running'");
  return Number(str(rows[0] ?? {}, 'Value') ?? '0');
}

/** Seconds behind the primary, or null when the replica is not replicating. */
export async function replicaLagSeconds(conn: SqlConnection): Promise<number | null> {
  const rows = await conn.query('SHOW SLAVE STATUS');
  const row = rows[0];
  if (!row) return null;
  const lag = str(row, 'Seconds_Behind_Master');
  return lag === null ? null : Number(lag);
}

/**
 * The operator's throttle query: a value > 0 means "wait". It runs read-only and timed, and a
 * failure names its class, never the database's text (see throttle-query.ts).
 */
export async function throttleQueryValue(conn: SqlConnection, sql: string): Promise<string | null> {
  return runThrottleQuery(conn, sql);
}
