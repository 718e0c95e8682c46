import { ERRNO, InvalidInput, VerificationFailed, type FerryError } from '../errors.ts';
import { fillHoles, type Hole } from '../holes.ts';
import { addId, type Id } from '../ids.ts';
import { qualified, quoteIdent, type TableRef } from '../identifiers.ts';
import { scalar, str, type SqlConnection } from '../ports/sql.ts';
import { checkThrottle, report, save, timeLeft, type CopyOutcome, type CopySettings, type CopyState, type Migration } from './chunked-copy.ts';
import { deliverAndRecord, deliverRows } from './delivery.ts';
import type { DeliveryLedger, LedgerEntry } from './ledger.ts';
import { lowWater, type IdClock } from './horizon.ts';
import { idsAfter } from './table-writes.ts';

/** An InnoDB transaction open on the source's server. */
export interface OpenTransaction {
  readonly thread: string;
  readonly started: string;
  readonly rowsModified: number;
  readonly query: string | null;
  readonly user: string | null;
  readonly host: string | null;
}

/**
 * Whether a transaction may hold a row not yet visible: one that changed rows, or is running an
 * INSERT or REPLACE now. A long read (a backup's consistent snapshot) holds no AUTO_INCREMENT id.
 */
export function mayHoldRows(t: OpenTransaction): boolean {
  return t.rowsModified > 0 || /^\s*(\/\*[\s\S]*?\*\/\s*)*(insert|replace)\b/i.test(t.query ?? '');
}

/**
 * Write transactions open on the server now, oldest first, other than this session's: who a wait
 * for the table's writers may be waiting for. Best effort, for messages only (INNODB_TRX is a
 * cache, refreshed at most every 100 ms, and says nothing of which tables a transaction touched).
 */
export async function openWriters(conn: SqlConnection): Promise<OpenTransaction[]> {
  const rows = await conn.query(
    `SELECT t.trx_mysql_thread_id AS thread, t.trx_started AS started, t.trx_rows_modified AS rows_modified, t.trx_query AS query, p.USER AS user, p.HOST AS host
       FROM information_schema.INNODB_TRX t LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
      WHERE t.trx_mysql_thread_id <> CONNECTION_ID() ORDER BY t.trx_started`,
  );
  return rows
    .map((r) => ({ thread: str(r, 'thread')!, started: str(r, 'started')!, rowsModified: Number(str(r, 'rows_modified') ?? '0'), query: str(r, 'query'), user: str(r, 'user'), host: str(r, 'host') }))
    .filter(mayHoldRows);
}

/**
 * Waits, once, for every transaction that has written to the table to end: `LOCK TABLES … READ`
 * is granted only when no transaction holds a write lock on the table's metadata, which a
 * transaction that inserted a row keeps until it commits or rolls back. The lock is released at
 * once. While the request waits (at most `seconds`) new writes to the table queue behind it, so it
 * gives up soon and is tried again later. Needs a session of its own. Returns whether it got through.
 */
export async function writersGone(conn: SqlConnection, ref: TableRef, seconds: number): Promise<boolean> {
  try {
    await conn.execute(`SET SESSION lock_wait_timeout = ${Math.trunc(seconds)}`);
    await conn.execute(`LOCK TABLES ${qualified(ref)} READ`);
    await conn.execute('UNLOCK TABLES');
    return true;
  } catch (err) {
    if ((err as FerryError).errno === ERRNO.LOCK_WAIT_TIMEOUT) return false;
    throw err;
  }
}

/**
 * Refuses a source the sweep cannot wait on: it needs a session of its own (not the RDS Data API)
 * and the LOCK TABLES privilege on the source's database.
 */
export async function checkCanWaitForWriters(connect: () => Promise<SqlConnection>, ref: TableRef, field: string): Promise<void> {
  const session = await connect();
  try {
    if (!session.sessions) {
      throw new InvalidInput(field, `"${session.name}" is an RDS Data API connection; table-copy waits for the source table's writers with a table lock of a session of its own: configure it as a host connection (mysql2 in the VPC)`);
    }
    await writersGone(session, ref, 1);
  } catch (err) {
    if (err instanceof InvalidInput) throw err;
    throw new InvalidInput(
      field,
      `table-copy waits for the transactions writing to ${ref.database}.${ref.table} with LOCK TABLES … READ (released at once), and "${session.name}" may not: ${(err as Error).message}. ` +
        `Grant it: GRANT LOCK TABLES ON \`${ref.database}\`.* TO <ferry's user>`,
    );
  } finally {
    await session.close();
  }
}

/** What to tell an operator while ferry waits for a table's writers. */
export function describeWait(table: TableRef, open: readonly OpenTransaction[], server: string): string {
  const first = open[0];
  const head = `waiting for the transactions that wrote to ${table.table} on ${server} to end (one may hold a row not yet visible)`;
  if (!first) return `${head}; the lock wait will be tried again`;
  const who = [first.user, first.host].filter(Boolean).join('@');
  return (
    `${head}; the oldest open write transaction on the server is thread ${first.thread}${who ? ` (${who})` : ''}, started ${first.started}, ${first.rowsModified} rows changed` +
    (first.query ? `, running: ${first.query.replace(/\s+/g, ' ').slice(0, 80)}` : '') +
    `. If it is the one and was left open by mistake: KILL ${first.thread}`
  );
}

/** Holes per probe query: keeps the statement and the range optimizer's work small. */
const HOLES_PER_PROBE = 200;

/** Source ids present now in these holes, ascending: index probes, one per hole. */
export async function idsInHoles(conn: SqlConnection, ref: TableRef, idColumn: string, holes: readonly Hole[]): Promise<Id[]> {
  const id = quoteIdent(idColumn);
  const out: Id[] = [];
  for (let i = 0; i < holes.length; i += HOLES_PER_PROBE) {
    const batch = holes.slice(i, i + HOLES_PER_PROBE);
    const rows = await conn.query(
      `SELECT ${id} AS id FROM ${qualified(ref)} WHERE ${batch.map(() => `${id} BETWEEN ? AND ?`).join(' OR ')} ORDER BY ${id}`,
      batch.flat(),
    );
    out.push(...rows.map((r) => str(r, 'id')!));
  }
  return out;
}

/** Where the sweep stands, kept in the checkpoint. */
export interface SweepState {
  /** Rounds begun. Each round settles (waits out the transactions open when it began), probes, then extends. */
  round: number;
  /** When the round began, or null between rounds. */
  horizonAt: string | null;
  /** The ledger's top when the round began: every id up to it had been handed out by then. */
  horizonTop: Id | null;
  /** Every transaction that had written to the table when the round began has ended since. */
  settled: boolean;
  /** The last span probed this round. */
  probedAfter: Id | null;
  /** Rows found in holes this round. */
  foundInRound: number;
  /** Rows delivered above the ledger's top this round. */
  extendedInRound: number;
  /** Rows found in holes and delivered, over every round. */
  lateRows: string;
  /** Rows delivered above the ledger's top, over every round. */
  newRows: string;
}

export function initialSweep(): SweepState {
  return { round: 0, horizonAt: null, horizonTop: null, settled: false, probedAfter: null, foundInRound: 0, extendedInRound: 0, lateRows: '0', newRows: '0' };
}

/** What a migration that sweeps keeps in its checkpoint, beside the chunked copy's state. */
export interface SweepingState extends CopyState {
  sweep: SweepState;
  /** When a row last arrived that had to be copied. */
  quietSince: string | null;
  /** The lowest id the id column's type allows: the ledger's first span starts there. */
  idFloor: Id;
  /** The source's id clock (see horizon.ts), kept with the checkpoint. */
  idClock?: IdClock;
}

export interface SweepSettings extends CopySettings {
  readonly catchUp: { readonly quietSeconds: number; readonly pollSeconds: number };
}

type SweepMigration = Migration<SweepSettings, SweepingState, string>;

/** How long one wait for the table's writers may hold up new writes to it before it gives up until the next poll. */
export const SETTLE_LOCK_WAIT_SECONDS = 2;

export type SweepOutcome = CopyOutcome | { kind: 'wait'; seconds: number; note: string };

/**
 * Looks again at every id that held no row when ferry last looked, and copies what arrived since,
 * until nothing is left to find. Round after round:
 *
 * 1. Settle: note the ledger's top, then wait until every transaction that has written to the
 *    table has ended (a table lock granted only then, see writersGone). Every id up to the top was
 *    handed out before (AUTO_INCREMENT only grows), so its row is now visible or never will be.
 * 2. Probe the holes of every unsettled span up to that top (index probes), deliver what is found
 *    there, and mark the span settled: it is never looked at again.
 * 3. Extend: deliver the source rows above the ledger's top, recording their holes.
 *
 * Done after a round that found nothing, left nothing unsettled, and came after the source had
 * been quiet (no row to copy) for `catchUp.quietSeconds`. Delivered rows are never compared or
 * copied again: the target's copy belongs to the application.
 */
export async function sweep(m: SweepMigration, ledger: DeliveryLedger): Promise<SweepOutcome> {
  const s = m.state;
  const w = s.sweep;
  const source = m.input.source;
  const waiting = await settleRound(m, () => ledger.top());
  if (waiting) return waiting;
  while (w.horizonTop !== null) {
    if (!timeLeft(m)) return { kind: 'budget' };
    const decision = await checkThrottle(m);
    if (decision.throttled) return { kind: 'throttled', reason: decision.reason, waitSeconds: decision.waitSeconds };
    const entries = await ledger.unsettled(w.probedAfter, w.horizonTop, 100);
    if (entries.length === 0) break;
    for (const e of entries) {
      const found = e.holes === null ? await lateByCount(m, e) : await idsInHoles(m.source, source, m.tables.idColumn, e.holes);
      const settle = (book: DeliveryLedger, late: readonly string[]) => book.update({ ...e, rows: (BigInt(e.rows) + BigInt(late.length)).toString(), holes: e.holes === null ? [] : fillHoles(e.holes, late), settled: true });
      let late: string[] = [];
      if (found.length) late = await deliverRows(m.tables, found, (tx, rows) => settle(ledger.on(tx), rows));
      else await settle(ledger, []);
      if (late.length) {
        w.foundInRound += late.length;
        w.lateRows = (BigInt(w.lateRows) + BigInt(late.length)).toString();
        s.quietSince = new Date(m.deps.now()).toISOString();
        report(m, `found ${late.length} rows committed late in ids ${e.lo}..${e.hi} (first ${late[0]}) and copied them`);
      }
      w.probedAfter = e.lo;
    }
    await save(m);
  }
  for (;;) {
    if (!timeLeft(m)) return { kind: 'budget' };
    const decision = await checkThrottle(m);
    if (decision.throttled) return { kind: 'throttled', reason: decision.reason, waitSeconds: decision.waitSeconds };
    const low = await lowWater(m.source, source, m.tables.idColumn, (s.idClock ??= []));
    const ids = await idsAfter(m.source, source, m.tables.idColumn, await ledger.top(), s.chunkSpan);
    if (ids.length === 0) break;
    const n = await deliverAndRecord(m.tables, ledger, ids, s.idFloor, low);
    w.extendedInRound += n;
    w.newRows = (BigInt(w.newRows) + BigInt(n)).toString();
    s.quietSince = new Date(m.deps.now()).toISOString();
    await save(m);
    report(m, `copied ${n} rows written to the source since, ids ${ids[0]}..${ids[ids.length - 1]}`);
  }
  return endRound(m, () => ledger.anyUnsettled());
}

/**
 * The start of a sweep round (see sweep): a new round notes when it began and the ledger's top
 * (`top`), then waits, once, until every transaction that had written to the old table has ended.
 * Returns the wait's outcome while one is still open, or null once the round is settled.
 */
export async function settleRound(m: SweepMigration, top: () => Promise<Id | null>): Promise<SweepOutcome | null> {
  const w = m.state.sweep;
  const source = m.input.source;
  if (w.horizonAt === null) {
    Object.assign(w, { round: w.round + 1, horizonTop: await top(), horizonAt: new Date(m.deps.now()).toISOString(), settled: false, probedAfter: null, foundInRound: 0, extendedInRound: 0 });
    await save(m);
  }
  if (!w.settled) {
    const session = await m.deps.sql.connectDedicated(source.connection);
    try {
      if (!(await writersGone(session, source, SETTLE_LOCK_WAIT_SECONDS))) {
        return { kind: 'wait', seconds: m.input.catchUp.pollSeconds, note: describeWait(source, await openWriters(session).catch(() => []), m.source.name) };
      }
    } finally {
      await session.close();
    }
    w.settled = true;
    await save(m);
  }
  return null;
}

/**
 * The end of a sweep round: caught up after a round that found nothing, once the source has been
 * quiet for `catchUp.quietSeconds` and nothing is left `unsettled`; else how long to wait for the
 * next round (none when this one found rows).
 */
export async function endRound(m: SweepMigration, unsettled: () => Promise<boolean>): Promise<SweepOutcome> {
  const s = m.state;
  const w = s.sweep;
  const quietFor = (m.deps.now() - Date.parse(s.quietSince ?? new Date(m.deps.now()).toISOString())) / 1000;
  const { quietSeconds, pollSeconds } = m.input.catchUp;
  const found = w.foundInRound + w.extendedInRound;
  w.horizonAt = null;
  if (found === 0 && quietFor >= quietSeconds && !(await unsettled())) {
    await save(m);
    return { kind: 'caught-up' };
  }
  await save(m);
  const seconds = found > 0 ? 0 : Math.max(1, Math.min(pollSeconds, Math.ceil(quietSeconds - quietFor)));
  return { kind: 'wait', seconds, note: `sweep round ${w.round}: ${w.foundInRound} late rows, ${w.extendedInRound} new rows; quiet for ${Math.floor(quietFor)} of ${quietSeconds} s` };
}

/**
 * The rows committed late into a span whose holes were not kept (see LedgerEntry.holes), once
 * every writer has ended: the span now holds more rows than were delivered, and those the target
 * lacks are them. When the target lacks more (the application deleted some of the delivered ones
 * there since the cut-over), which are late cannot be told apart, and the sweep stops, naming the span.
 */
async function lateByCount(m: SweepMigration, e: LedgerEntry): Promise<Id[]> {
  const t = m.tables;
  const id = quoteIdent(t.idColumn);
  const count = await scalar(t.source, `SELECT COUNT(*) FROM ${qualified(t.sourceTable)} WHERE ${id} BETWEEN ? AND ?`, [e.lo, e.hi]);
  const extra = BigInt(count ?? '0') - BigInt(e.rows);
  if (extra <= 0n) return [];
  const missing: Id[] = [];
  for (let after = addId(e.lo, -1); ; ) {
    const ids = await idsAfter(t.source, t.sourceTable, t.idColumn, after, 5000, e.hi);
    if (ids.length === 0) break;
    const there = new Set((await t.target.query(`SELECT ${id} AS id FROM ${qualified(t.targetTable)} WHERE ${id} IN (${ids.map(() => '?').join(', ')})`, ids)).map((r) => str(r, 'id')!));
    missing.push(...ids.filter((x) => !there.has(x)));
    if (BigInt(missing.length) > extra) break;
    after = ids[ids.length - 1]!;
  }
  if (BigInt(missing.length) !== extra) {
    throw new VerificationFailed(
      `ids ${e.lo}..${e.hi} of ${t.sourceTable.table} hold ${extra} rows more than were delivered, and ${t.targetTable.table} lacks ${missing.length}${BigInt(missing.length) > extra ? ' or more' : ''} of them ` +
        '(the application deleted some delivered rows there since the cut-over): which were committed late cannot be told apart. No row was deleted; copy the late ones by hand, then run again.',
    );
  }
  return missing;
}
