import { BeginTransactionCommand, CommitTransactionCommand, ExecuteStatementCommand, RDSDataClient, RollbackTransactionCommand, type Field, type SqlParameter } from '@aws-sdk/client-rds-data';
import { DatabaseError, ResultTooLarge, TransientError } from '../core/errors.ts';
import type { SqlConnection, SqlRow, SqlValue } from '../core/ports/sql.ts';

/** Errors after which the same statement may pass: a paused Aurora waking up, timeouts, throttling. */
const TRANSIENT = new Set([
  'StatementTimeoutException', 'DatabaseResumingException', 'DatabaseUnavailableException', 'ServiceUnavailableError',
  'InternalServerErrorException', 'ThrottlingException', 'TooManyRequestsException',
]);

/** Rewrites `?` placeholders to the Data API's named `:p0, :p1, …`, leaving quoted text alone. */
export function namedPlaceholders(sql: string): { sql: string; count: number } {
  let out = '';
  let count = 0;
  let quote: string | null = null;
  for (const ch of sql) {
    if (quote) {
      if (ch === quote) quote = null;
      out += ch;
    } else if (ch === "'" || ch === '"' || ch === '`') {
      quote = ch;
      out += ch;
    } else if (ch === '?') {
      out += `:p${count++}`;
    } else {
      out += ch;
    }
  }
  return { sql: out, count };
}

function toField(value: unknown): Field {
  if (value === null || value === undefined) return { isNull: true };
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'bigint') return { stringValue: value.toString() };
  if (typeof value === 'boolean') return { booleanValue: value };
  if (typeof value === 'number') return Number.isInteger(value) ? { longValue: value } : { doubleValue: value };
  if (value instanceof Uint8Array) return { blobValue: value };
  throw new TypeError(`cannot send a ${typeof value} to the Data API`);
}

/** Every value back as text or bytes; with `longReturnType: STRING` a BIGINT never passes through a JS number. */
function fromField(field: Field): SqlValue {
  if (field.isNull) return null;
  if (field.stringValue !== undefined) return field.stringValue;
  if (field.longValue !== undefined) return String(field.longValue);
  if (field.doubleValue !== undefined) return String(field.doubleValue);
  if (field.booleanValue !== undefined) return field.booleanValue ? '1' : '0';
  if (field.blobValue !== undefined) return Buffer.from(field.blobValue);
  return null;
}

export interface DataApiTarget {
  readonly clusterArn: string;
  readonly secretArn: string;
}

/**
 * The SQL port over the RDS Data API (Aurora MySQL). Each call is its own session, so it serves
 * statements that stand alone: table-copy's copy, verify, catch-up and trickle-delete. Rows are
 * kept server-side where both tables share the cluster (`INSERT … SELECT`).
 */
export class DataApiConnection implements SqlConnection {
  readonly sessions = false;
  /** Responses are capped at 1 MiB: start with pages of a thousand rows, halved when a page is too big. */
  readonly readPageRows = 1000;
  /** Requests are capped too; multi-row INSERTs stay well below. */
  readonly maxStatementBytes = 512 * 1024;
  readonly serverKey: string;
  constructor(
    readonly name: string,
    private readonly target: DataApiTarget,
    private readonly client: RDSDataClient = new RDSDataClient({}),
    /** Set on the connection a transaction hands to its body: every statement carries it. */
    private readonly transactionId?: string,
  ) {
    this.serverKey = target.clusterArn;
  }

  /**
   * BeginTransaction, the body's statements under its id, then CommitTransaction (RollbackTransaction
   * when it throws). The Data API cannot set a transaction's isolation before it begins, so it runs
   * at the cluster's default whatever `readCommitted` asks; that only takes more locks.
   */
  async transaction<T>(fn: (tx: SqlConnection) => Promise<T>): Promise<T> {
    if (this.transactionId) throw new TypeError('transactions do not nest');
    const call = async <R>(what: string, send: () => Promise<R>): Promise<R> => {
      try {
        return await send();
      } catch (err) {
        throw this.failure(err, what);
      }
    };
    const { transactionId } = await call('begin transaction', () => this.client.send(new BeginTransactionCommand({ resourceArn: this.target.clusterArn, secretArn: this.target.secretArn })));
    const tx = new DataApiConnection(this.name, this.target, this.client, transactionId);
    try {
      const result = await fn(tx);
      await call('commit', () => this.client.send(new CommitTransactionCommand({ resourceArn: this.target.clusterArn, secretArn: this.target.secretArn, transactionId })));
      return result;
    } catch (err) {
      await this.client.send(new RollbackTransactionCommand({ resourceArn: this.target.clusterArn, secretArn: this.target.secretArn, transactionId })).catch(() => undefined);
      throw err;
    }
  }

  private failure(err: unknown, what: string): Error {
    const e = err as Error;
    const detail = `${this.name}: ${what}: ${e.name}: ${e.message}`;
    // "Database error code: 1146. Message: …": the number, as mysql2 gives it, for callers that act on it
    const code = /Database error code: (\d+)/.exec(e.message)?.[1];
    const errno = code === undefined ? undefined : Number(code);
    if (/more than the allowed response size limit/i.test(e.message)) return new ResultTooLarge(detail, { cause: err, errno });
    if (TRANSIENT.has(e.name) || /Communications link failure/i.test(e.message)) return new TransientError(detail, { cause: err, errno });
    return new DatabaseError(detail, { cause: err, errno });
  }

  private async run(sql: string, params: readonly unknown[], what: string) {
    const named = namedPlaceholders(sql);
    if (named.count !== params.length) throw new TypeError(`${named.count} placeholders but ${params.length} values`);
    const parameters: SqlParameter[] = params.map((value, i) => ({ name: `p${i}`, value: toField(value) }));
    try {
      return await this.client.send(
        new ExecuteStatementCommand({
          resourceArn: this.target.clusterArn,
          secretArn: this.target.secretArn,
          sql: named.sql,
          parameters,
          includeResultMetadata: true,
          resultSetOptions: { longReturnType: 'STRING', decimalReturnType: 'STRING' },
          transactionId: this.transactionId,
        }),
      );
    } catch (err) {
      throw this.failure(err, what);
    }
  }

  async query(sql: string, params: readonly unknown[] = []): Promise<SqlRow[]> {
    const out = await this.run(sql, params, 'query failed');
    const names = (out.columnMetadata ?? []).map((c) => c.label ?? c.name ?? '');
    return (out.records ?? []).map((record) => Object.fromEntries(record.map((field, i) => [names[i]!, fromField(field)])));
  }

  async execute(sql: string, params: readonly unknown[] = []): Promise<{ affectedRows: number }> {
    const out = await this.run(sql, params, 'statement failed');
    return { affectedRows: out.numberOfRecordsUpdated ?? 0 };
  }

  async close(): Promise<void> {}
}
