import { randomBytes } from 'node:crypto';
import type { OnlineAlterInput } from '../online-alter-input.ts';
import { qualified, quoteIdent, type TableRef } from '../identifiers.ts';
import { str, type SqlConnection } from '../ports/sql.ts';
import { sampleInto } from './alter-checks.ts';
import { copyRange, keyBounds, PIECE_MILLIS, GIVE_WAY_SECONDS } from './copier.ts';
import { copiedColumns, copyKeyColumns, copyKeyShape, pairedHashColumns, inspectTable, type CopyKey, type TableInfo } from './inspector.ts';
import { captureKey, createShadow, createTriggers, dropShadow, dropTriggers, shadowNames } from './shadow.ts';

/** What online-alter costs the application, measured on a scratch copy of the table (see measureOnScratch). */
export interface AlterCost {
  /** Rows in the scratch copy. */
  readonly rows: number;
  /** Single-row writes timed each way: as many deletes, and as many inserts of the same rows back. */
  readonly writes: number;
  readonly millisWithout: number;
  readonly millisWith: number;
  /** The scratch rows copied into its altered copy by the copy's own code, and how long that took. */
  readonly copiedRows: number;
  readonly copyMillis: number;
}

/** Rows deleted and inserted again in each timed pass. */
const TIMED_WRITES = 200;

/**
 * Measures, on a scratch copy of up to 2,000 of the table's rows under names of its own (all
 * dropped before it returns, whatever happens): single-row deletes and inserts of the same rows,
 * as an application sends them, without ferry's triggers and then with them (the altered copy
 * built and the triggers made as CreateShadow makes them); and the copy itself, the scratch rows
 * copied into the altered copy by the copy's own code. Nothing else is touched.
 */
export async function measureOnScratch(conn: SqlConnection, input: OnlineAlterInput, info: TableInfo, copyKey: CopyKey, now: () => number): Promise<AlterCost> {
  const t = input.table;
  const name = `_ferry_chk_${randomBytes(8).toString('hex')}`;
  const scratch: TableRef = { database: t.database, table: name };
  const kept: TableRef = { database: t.database, table: `${name}_k` };
  const keyColumns = copyKeyColumns(copyKey);
  const shape = copyKeyShape(info, copyKey);
  const key = { idColumn: copyKey.column, key: shape, keyIndex: copyKey.index };
  const cols = copiedColumns(info).map(quoteIdent).join(', ');
  const lock = { seconds: input.cutover.lockWaitSeconds, attempts: 1 };
  // the scratch names are its own: a trigger name derived from them cannot be the migration's
  const tag = `plan ${name}`;
  try {
    for (const table of [scratch, kept]) await conn.execute(`CREATE TABLE ${qualified(table)} LIKE ${qualified(t)}`);
    await sampleInto(conn, t, scratch, copiedColumns(info), keyColumns.slice(0, shape.orderedBy));
    await conn.execute(`INSERT INTO ${qualified(kept)} (${cols}) SELECT ${cols} FROM ${qualified(scratch)}`);
    const keys = (await conn.query(`SELECT ${shape.select()} FROM ${qualified(scratch)} ORDER BY ${shape.orderBy()} LIMIT ${TIMED_WRITES}`)).map((r) => shape.fromRow(r));
    const rows = Number(str((await conn.query(`SELECT COUNT(*) AS n FROM ${qualified(scratch)}`))[0]!, 'n'));
    // One transaction a pass: what is timed is the statements' own work, which the triggers add to, not the commit's flush, which they do not.
    const pass = async () => {
      const started = now();
      await conn.transaction(async (tx) => {
        for (const each of keys) {
          const it = shape.equals(each);
          await tx.execute(`DELETE FROM ${qualified(scratch)} WHERE ${it.sql}`, it.params);
          await tx.execute(`INSERT INTO ${qualified(scratch)} (${cols}) SELECT ${cols} FROM ${qualified(kept)} WHERE ${it.sql}`, it.params);
        }
      });
      return now() - started;
    };
    await pass();
    const mapping = await createShadow(conn, tag, scratch, input.alter, keyColumns, lock);
    const shadow = shadowNames(scratch).shadow;
    const shadowInfo = (await inspectTable(conn, shadow))!;
    const tables = {
      source: conn, target: conn, sourceTable: scratch, targetTable: shadow, ...key, columns: mapping.source, targetColumns: mapping.target,
      hash: pairedHashColumns({ info, names: mapping.source }, { info: shadowInfo, names: mapping.target }), readLock: true
    };
    const bounds = await keyBounds(conn, scratch, shape);
    const range = { lo: bounds.min ?? '0', hi: bounds.max ?? '0' };
    // the first copy sizes its pieces as a run's copy soon does; the second, timed, copies in pieces of that size
    await copyRange(tables, range);
    await conn.execute(`DELETE FROM ${qualified(shadow)}`);
    const started = now();
    const { inserted } = await copyRange(tables, range);
    const copyMillis = now() - started;
    // passes with and without the triggers in turn, the fastest of each kept: what else the server does comes and goes
    // the scratch copy was made LIKE the table: the same keys
    const capture = captureKey(info, shadowInfo, mapping, keyColumns)!;
    let [millisWith, millisWithout] = [Infinity, Infinity];
    for (let round = 0; round < 3; round++) {
      millisWith = Math.min(millisWith, await pass());
      await dropTriggers(conn, tag, scratch);
      millisWithout = Math.min(millisWithout, await pass());
      if (round < 2) await createTriggers(conn, tag, scratch, capture, mapping, lock);
    }
    return { rows, writes: keys.length, millisWithout, millisWith, copiedRows: inserted, copyMillis };
  } finally {
    await dropShadow(conn, tag, scratch, lock).catch(() => undefined);
    for (const table of [scratch, kept]) await conn.execute(`DROP TABLE IF EXISTS ${qualified(table)}`);
  }
}

/** What the application feels during an online-alter, as the plan says it: from the measurement, and how the copy holds its locks. */
export function describeAlterCost(c: AlterCost, table: string): string[] {
  const per = c.writes ? (c.millisWith - c.millisWithout) / (2 * c.writes) : 0;
  return [
    `each insert, update and delete of ${table} costs about ${Math.max(0, per).toFixed(2)} ms more while the triggers are on (CreateShadow until the swap): ` +
      `on a scratch copy of ${c.rows} of its rows, ${c.writes} deletes and ${c.writes} inserts (commits left out) took ${c.millisWithout} ms without them and ${c.millisWith} ms with them`,
    `during the copy an application write to the rows being copied waits for the piece under way: the copy holds its locks about ${PIECE_MILLIS} ms at a time, ` +
      `and rolls back and tries again rather than wait more than ${GIVE_WAY_SECONDS} s for one of the application's`,
  ];
}

/** A transaction open on the server, as operators are told of it. */
export interface LongTransaction {
  readonly thread: string;
  readonly seconds: number;
  readonly user: string | null;
  readonly host: string | null;
  readonly query: string | null;
}

/**
 * Transactions open on the server for at least `seconds`, oldest first, other than this session's
 * (reads included: any of them that used the table holds its metadata lock until it ends). The
 * server does not say which tables a transaction used, so each is one that may hold the table.
 */
export async function longTransactions(conn: SqlConnection, seconds: number): Promise<LongTransaction[]> {
  const rows = await conn.query(
    `SELECT t.trx_mysql_thread_id AS thread, TIMESTAMPDIFF(SECOND, t.trx_started, NOW()) AS seconds, t.trx_query AS query, p.USER AS user, p.HOST AS host
       FROM information_schema.INNODB_TRX t LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
      WHERE t.trx_mysql_thread_id <> CONNECTION_ID() AND t.trx_started <= NOW() - INTERVAL ${Math.trunc(seconds)} SECOND ORDER BY t.trx_started`,
  );
  return rows.map((r) => ({ thread: str(r, 'thread')!, seconds: Number(str(r, 'seconds') ?? '0'), user: str(r, 'user'), host: str(r, 'host'), query: str(r, 'query') }));
}

/** One transaction, named so an operator can find it (and KILL it if it was left open by mistake). */
export function describeTransaction(x: LongTransaction): string {
  const who = [x.user, x.host].filter(Boolean).join('@');
  return `thread ${x.thread}${who ? ` (${who})` : ''}, open ${x.seconds} s${x.query ? `, running: ${x.query.replace(/\s+/g, ' ').slice(0, 80)}` : ''}`;
}

/**
 * What to tell an operator while a DDL on the live table waits for its lock: the transactions
 * open longer than that wait, the oldest first (one of them, having used the table, holds it).
 */
export async function whoHoldsTheTable(conn: SqlConnection, seconds: number): Promise<string> {
  const open = await longTransactions(conn, seconds).catch(() => []);
  if (!open.length) return '';
  return `; open longer than that: ${open.slice(0, 3).map(describeTransaction).join('; ')}${open.length > 3 ? `; and ${open.length - 3} more` : ''} (one that was left open by mistake can be ended with KILL <thread>)`;
}
