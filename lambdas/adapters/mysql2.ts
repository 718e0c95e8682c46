import mysql from 'mysql2/promise';
import type { Connection } from 'mysql2/promise';
import { Readable } from 'node:stream';
import { DatabaseError, FerryError, LocalInfileRefused, TransientError } from '../core/errors.ts';
import type { SqlConnection, SqlConnector, SqlRow } from '../core/ports/sql.ts';

/** The part of mysql2's typeCast field this adapter reads. */
interface TypeCastField {
  readonly type: string;
  string(encoding?: string): string | null;
  buffer(): Buffer | null;
}

/** MySQL error codes after which the same statement may well succeed. */
const TRANSIENT_CODES = new Set([
  'PROTOCOL_CONNECTION_LOST', 'ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ENOTCONN',
  'ER_LOCK_WAIT_TIMEOUT', 'ER_LOCK_DEADLOCK', 'ER_SERVER_SHUTDOWN', 'ER_CON_COUNT_ERROR',
  'ER_QUERY_INTERRUPTED', 'ER_CONNECTION_KILLED', 'ER_CLIENT_INTERACTION_TIMEOUT', 'ER_TOO_MANY_USER_CONNECTIONS',
]);

export const DEFAULT_MYSQL_URL = 'mysql://root@127.0.0.1:3306';

/** The server refused the user or its password (MySQL's and MariaDB's 1045). */
const ER_ACCESS_DENIED = 1045;

/** The environment variable that may override one connection: `csmh` → `FERRY_MYSQL_CSMH`. */
export function envNameFor(kind: 'MYSQL' | 'COUCH', connection: string): string {
  return `FERRY_${kind}_${connection.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/** Where a connection name points, and which variable said so; the URL is never logged. */
export function resolveMysqlUrl(name: string, env: NodeJS.ProcessEnv = process.env): { url: string; from: string } {
  const specific = envNameFor('MYSQL', name);
  if (env[specific]) return { url: env[specific]!, from: specific };
  if (env.MYSQL_URL) return { url: env.MYSQL_URL, from: 'MYSQL_URL' };
  return { url: DEFAULT_MYSQL_URL, from: 'the default mysql://root@127.0.0.1:3306' };
}

/** host:port of a URL, with the user and password left out. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '3306'}`;
  } catch {
    return '(unparseable URL)';
  }
}

/**
 * The driver's error as ferry's. A connection-level failure (the server went away, killed this
 * session, or the session was closed) is transient: a fresh connection and the same unit of work
 * will likely pass.
 */
export function toFerryError(err: unknown, what: string): Error {
  const e = err as { code?: string; errno?: number; sqlMessage?: string; message?: string; fatal?: boolean };
  const detail = e.sqlMessage ?? e.message ?? String(err);
  // mysql2 names errnos after MySQL's list, which MariaDB's numbers do not always follow: show the number.
  const ref = e.errno ? ` (error ${e.errno}${e.code?.startsWith('ER_') ? '' : `, ${e.code}`})` : e.code ? ` (${e.code})` : '';
  if ((e.code && TRANSIENT_CODES.has(e.code)) || e.fatal || isClosedConnection(err)) {
    return new TransientError(`${what}: ${detail}${ref}`, { cause: err, errno: e.errno });
  }
  return new DatabaseError(`${what}: ${detail}${ref}`, { cause: err, errno: e.errno });
}

/** The server's "local infile is disabled / not allowed" errors (MySQL's and MariaDB's numbers). */
const LOCAL_INFILE_REFUSED = new Set([1148, 3948, 3950, 4166]);

/** mysql2's error for a command on a connection that has already ended. */
function isClosedConnection(err: unknown): boolean {
  return /connection is in closed state/i.test((err as Error)?.message ?? '');
}

const AS_TEXT = new Set(['TINY', 'SHORT', 'LONG', 'INT24', 'LONGLONG', 'YEAR', 'DECIMAL', 'NEWDECIMAL', 'FLOAT', 'DOUBLE']);

/**
 * Numbers come back as their decimal text (an INT id is a string like a BIGINT one), JSON as text,
 * dates as text (`dateStrings`), binary columns as Buffers: no JS numbers, no Date objects. A
 * spatial value comes back as the bytes the server stores it as (SRID and WKB), which it takes
 * back as they are when the row is written again; the driver would parse it into objects.
 */
function typeCast(field: TypeCastField, next: () => unknown): unknown {
  if (AS_TEXT.has(field.type)) return field.string();
  if (field.type === 'GEOMETRY') return field.buffer();
  // MariaDB's JSON is LONGTEXT marked as JSON in its extended metadata; the driver would parse it.
  if (field.type === 'JSON' || (field as { extendedFormat?: string }).extendedFormat === 'json') return field.string('utf8');
  return next();
}

class Mysql2Connection implements SqlConnection {
  private broken = false;
  readonly sessions = true;
  readonly readPageRows = 1_000_000;
  readonly maxStatementBytes = 4 * 1024 * 1024;
  constructor(readonly name: string, readonly serverKey: string, private readonly conn: Connection) {
    conn.on('error', () => { this.broken = true; });
  }

  get usable(): boolean {
    return !this.broken;
  }

  /** When the session last answered, for deciding whether to ping it before reuse. */
  lastUsed = Date.now();

  async query(sql: string, params: readonly unknown[] = []): Promise<SqlRow[]> {
    this.lastUsed = Date.now();
    try {
      const [rows] = await this.conn.query({ sql, values: params as unknown[], typeCast });
      return rows as SqlRow[];
    } catch (err) {
      this.markIfDropped(err);
      throw toFerryError(err, `${this.name}: query failed`);
    }
  }

  async execute(sql: string, params: readonly unknown[] = []): Promise<{ affectedRows: number }> {
    this.lastUsed = Date.now();
    try {
      const [result] = await this.conn.query({ sql, values: params as unknown[] });
      return { affectedRows: (result as { affectedRows?: number }).affectedRows ?? 0 };
    } catch (err) {
      this.markIfDropped(err);
      throw toFerryError(err, `${this.name}: statement failed`);
    }
  }

  async *streamQuery(sql: string, params: readonly unknown[] = []): AsyncGenerator<SqlRow> {
    this.lastUsed = Date.now();
    // The callback connection under the promise wrapper streams a result.
    const core = (this.conn as unknown as { connection: import('mysql2').Connection }).connection;
    if (this.broken) throw new TransientError(`${this.name}: query failed: the session was lost`);
    // The driver tells a streamed query nothing when its session is lost (a KILL, the server gone),
    // not even when it was lost before the query was sent: the rows would wait for ever. The
    // session's own error or end ends them, listened for before the query goes out.
    let gone: Error | null = null;
    let rows: Readable | null = null;
    const lost = (err?: unknown) => {
      gone ??= err instanceof Error ? err : Object.assign(new Error('Connection lost: the server closed the connection'), { fatal: true });
      rows?.destroy(gone);
    };
    core.on('error', lost);
    core.on('end', lost);
    rows = core.query({ sql, values: params as unknown[], typeCast }).stream({ highWaterMark: 500 });
    if (gone) rows.destroy(gone);
    let finished = false;
    try {
      for await (const row of rows) yield row as SqlRow;
      finished = true;
    } catch (err) {
      this.markIfDropped(err);
      throw toFerryError(err, `${this.name}: query failed`);
    } finally {
      core.off('error', lost);
      core.off('end', lost);
      // Rows left unread would hold up the session's next command: the session ends here.
      if (!finished) {
        this.broken = true;
        core.destroy();
      }
      this.lastUsed = Date.now();
    }
  }

  async loadLocal(sql: string, data: AsyncIterable<Uint8Array>): Promise<{ affectedRows: number }> {
    this.lastUsed = Date.now();
    let file: Readable | null = null;
    try {
      const parts = async function* () {
        for await (const part of data) yield Buffer.from(part.buffer, part.byteOffset, part.byteLength);
      };
      const [result] = await this.conn.query({ sql, infileStreamFactory: () => (file = Readable.from(parts())) });
      return { affectedRows: (result as { affectedRows?: number }).affectedRows ?? 0 };
    } catch (err) {
      // The rows' reader is left where it stopped: end it, and with it the source's result.
      (file as Readable | null)?.destroy();
      // The rows' own failure (the source's session lost) is already ferry's, and says where it happened.
      if (err instanceof FerryError) throw err;
      const errno = (err as { errno?: number }).errno;
      if (errno !== undefined && LOCAL_INFILE_REFUSED.has(errno)) throw new LocalInfileRefused(`${this.name}: LOAD DATA LOCAL INFILE refused: ${(err as Error).message}`, { cause: err, errno });
      this.markIfDropped(err);
      throw toFerryError(err, `${this.name}: LOAD DATA failed`);
    } finally {
      this.lastUsed = Date.now();
    }
  }

  async transaction<T>(fn: (tx: SqlConnection) => Promise<T>, options: { readCommitted?: boolean } = {}): Promise<T> {
    if (options.readCommitted) await this.execute('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
    await this.execute('START TRANSACTION');
    try {
      const result = await fn(this);
      await this.execute('COMMIT');
      return result;
    } catch (err) {
      await this.execute('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  private markIfDropped(err: unknown): void {
    const code = (err as { code?: string }).code;
    // Network-level failures (ECONNRESET, EPIPE, …), fatal protocol errors and a killed session end it; other ER_* errors do not.
    if ((err as { fatal?: boolean }).fatal || isClosedConnection(err) || code === 'ER_CONNECTION_KILLED' || (code && /^E[A-Z]+$/.test(code))) this.broken = true;
  }

  /** Whether the session still answers; a session the server dropped while idle is found here. */
  async alive(): Promise<boolean> {
    if (this.broken) return false;
    try {
      await this.conn.ping();
      return true;
    } catch {
      this.broken = true;
      return false;
    }
  }

  async close(): Promise<void> {
    this.broken = true;
    await this.conn.end().catch(() => this.conn.destroy());
  }

  abort(): void {
    this.broken = true;
    this.conn.destroy();
  }
}

/** Where a connection name leads: driver options (credentials included, never logged) and, for messages, where and why. */
export interface MysqlTarget {
  readonly options: mysql.ConnectionOptions;
  /** host:port, no credentials */
  readonly where: string;
  /** which setting chose it, e.g. `FERRY_MYSQL_CSMH` */
  readonly from: string;
}

export type MysqlResolver = (name: string) => Promise<MysqlTarget>;

/** Locally: `FERRY_MYSQL_<NAME>`, else `MYSQL_URL`, else the default URL. */
export function envMysqlResolver(env: NodeJS.ProcessEnv = process.env): MysqlResolver {
  return async (name) => {
    const { url, from } = resolveMysqlUrl(name, env);
    return { options: { uri: url }, where: redact(url), from };
  };
}

/** Idle longer than this, a cached session is pinged before it is handed out again. */
const IDLE_PING_MILLIS = 5_000;

/** Connections by name, opened once and reused while healthy. */
export class Mysql2Connector implements SqlConnector {
  private readonly open = new Map<string, Mysql2Connection>();
  private readonly resolve: MysqlResolver;
  constructor(source: NodeJS.ProcessEnv | MysqlResolver = process.env) {
    this.resolve = typeof source === 'function' ? source : envMysqlResolver(source);
  }

  async connect(name: string): Promise<SqlConnection> {
    const cached = this.open.get(name);
    // A session idle for a while (an approval wait, wait_timeout, a failover) is pinged before reuse.
    if (cached?.usable && (Date.now() - cached.lastUsed < IDLE_PING_MILLIS || (await cached.alive()))) return cached;
    // A session that lost its connection is closed for good, so nothing it held lingers.
    if (cached) await cached.close();
    const fresh = await this.connectDedicated(name);
    this.open.set(name, fresh);
    return fresh;
  }

  async connectDedicated(name: string): Promise<Mysql2Connection> {
    const { options, where, from } = await this.resolve(name);
    let conn: Connection;
    try {
      conn = await mysql.createConnection({
        ...options,
        supportBigNumbers: true,
        bigNumberStrings: true,
        dateStrings: true,
        multipleStatements: false,
        connectTimeout: 10_000,
        charset: 'utf8mb4',
      });
      // Session time zone fixed so TIMESTAMP columns read and write the same text on both sides.
      await conn.query("SET SESSION time_zone = '+00:00'");
      // Strict, whatever the server's default: a value a table cannot hold fails ferry's statement instead of being cut.
      // NO_AUTO_VALUE_ON_ZERO: ferry writes ids as they are, and a row whose id is 0 keeps it.
      // Backslash escapes on: the driver escapes values with them, and LOAD DATA's input uses them.
      await conn.query(
        "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(TRIM(BOTH ',' FROM REPLACE(CONCAT(',', @@SESSION.sql_mode, ','), ',NO_BACKSLASH_ESCAPES,', ',')), ''), 'STRICT_ALL_TABLES', 'NO_AUTO_VALUE_ON_ZERO')",
      );
    } catch (err) {
      // Unreachable, restarting, out of connections, or refusing credentials being rotated: all may
      // pass on a retry, and after the retries the message names the server and the error.
      const e = err as { code?: string; errno?: number; message?: string };
      const advice = e.errno === ER_ACCESS_DENIED
        ? `the server refused the user and password: fix them in ${envNameFor('MYSQL', name)} (or MYSQL_URL)`
        : `start the server, or point ${envNameFor('MYSQL', name)} (or MYSQL_URL) at the right one`;
      throw new TransientError(`cannot reach connection "${name}" at ${where} (from ${from}): ${e.code ?? ''} ${e.message ?? ''}`.trim() + `. ${advice[0]!.toUpperCase()}${advice.slice(1)}, then run again to resume.`, {
        cause: err,
        errno: e.errno,
      });
    }
    return new Mysql2Connection(name, where, conn);
  }

  async closeAll(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.all(all.map((c) => c.close()));
  }
}
