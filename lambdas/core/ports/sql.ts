/**
 * The SQL port. Values come back as decimal strings, text strings, Buffers (binary columns) or null,
 * never JS numbers, so ids, DECIMALs and doubles survive the trip exactly.
 */
export type SqlValue = string | Buffer | null;
export type SqlRow = Record<string, SqlValue>;

export interface SqlConnection {
  /** The connection name from the input, e.g. `edxapp`. */
  readonly name: string;
  /** Identifies the server without credentials (`host:port`): equal keys can join across databases. */
  readonly serverKey: string;
  /**
   * Whether session state lasts between calls (SET SESSION, LOCK TABLES, START TRANSACTION): true
   * for a driver connection, false for the RDS Data API, where each call may land on another session.
   */
  readonly sessions: boolean;
  /** Rows to ask for in one read when rows travel between servers (halved on ResultTooLarge). */
  readonly readPageRows: number;
  /** Largest statement to send, in bytes (multi-row INSERTs are cut to fit). */
  readonly maxStatementBytes: number;
  query(sql: string, params?: readonly unknown[]): Promise<SqlRow[]>;
  execute(sql: string, params?: readonly unknown[]): Promise<{ affectedRows: number }>;
  /**
   * Runs `fn` in one transaction on this connection, committed when it resolves and rolled back
   * when it throws. `fn` is given the connection to use inside it (the Data API's carries the
   * transaction id). No nesting.
   */
  transaction<T>(fn: (tx: SqlConnection) => Promise<T>, options?: { readCommitted?: boolean }): Promise<T>;
  /** A query's rows as they arrive, none held beyond the consumer's pace (driver connections only). */
  streamQuery?(sql: string, params?: readonly unknown[]): AsyncIterable<SqlRow>;
  /**
   * Runs a `LOAD DATA LOCAL INFILE` statement whose file is `data` (driver connections only).
   * Throws LocalInfileRefused when the server or its settings do not allow it.
   */
  loadLocal?(sql: string, data: AsyncIterable<Uint8Array>): Promise<{ affectedRows: number }>;
  close(): Promise<void>;
  /** Drops the session at once, a statement under way or not (driver connections; the next use reconnects). */
  abort?(): void;
}

export interface SqlConnector {
  /** Opens (or reuses) the connection of that name. Unknown names throw InvalidInput; an unreachable server, TransientError. */
  connect(name: string): Promise<SqlConnection>;
  /** A connection of its own, not shared with other work (for LOCK TABLES); the caller closes it. */
  connectDedicated(name: string): Promise<SqlConnection>;
  closeAll(): Promise<void>;
}

/** First column of the first row, as a string (or null). */
export async function scalar(conn: SqlConnection, sql: string, params?: readonly unknown[]): Promise<string | null> {
  const rows = await conn.query(sql, params);
  const first = rows[0];
  if (!first) return null;
  const value = Object.values(first)[0];
  if (value === undefined || value === null) return null;
  return Buffer.isBuffer(value) ? value.toString('utf8') : value;
}

export function str(row: SqlRow, key: string): string | null {
  const v = row[key];
  if (v === undefined || v === null) return null;
  return Buffer.isBuffer(v) ? v.toString('utf8') : v;
}
