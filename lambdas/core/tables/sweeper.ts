import { InvalidInput } from '../errors.ts';
import { fillHoles, type Hole } from '../holes.ts';
import type { Id } from '../ids.ts';
import { qualified, quoteIdent, type TableRef } from '../identifiers.ts';
import { scalar, str, type SqlConnection } from '../ports/sql.ts';
import { checkThrottle, report, save, timeLeft, type CopyOutcome, type CopySettings, type CopyState, type Migration } from './chunked-copy.ts';
import { deliverAndRecord, deliverRows } from './delivery.ts';
import type { DeliveryLedger } from './ledger.ts';
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

/** The server's clock, in the session's time zone (the one INNODB_TRX speaks). */
export async function serverNow(conn: SqlConnection): Promise<string> {
  return (await scalar(conn, 'SELECT NOW() AS now'))!;
}

/**
 * Transactions on the server that began at or before `since` and may still hold rows, other than
 * this session's. Needs the PROCESS privilege (checked by Preflight).
 */
export async function transactionsOpenSince(conn: SqlConnection, since: string): Promise<OpenTransaction[]> {
  const rows = await conn.query(
    `SELECT t.trx_mysql_thread_id AS thread, t.trx_started AS started, t.trx_rows_modified AS rows_modified, t.trx_query AS query, p.USER AS user, p.HOST AS host
       FROM information_schema.INNODB_TRX t LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
      WHERE t.trx_started <= ? AND t.trx_mysql_thread_id <> CONNECTION_ID() ORDER BY t.trx_started`,
    [since],
  );
  return rows
    .map((r) => ({ thread: str(r, 'thread')!, started: str(r, 'started')!, rowsModified: Number(str(r, 'rows_modified') ?? '0'), query: str(r, 'query'), user: str(r, 'user'), host: str(r, 'host') }))
    .filter(mayHoldRows);
}

/** Refuses a source connection that cannot see the server's open transactions. */
export async function checkCanSeeTransactions(conn: SqlConnection, field: string): Promise<void> {
  try {
    await conn.query('SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX');
  } catch (err) {
    throw new InvalidInput(
      field,
      `ferry needs to see the open transactions on "${conn.name}" (information_schema.INNODB_TRX) to know when every late row has committed, and was refused: ` +
        `${(err as Error).message}. Grant it: GRANT PROCESS ON *.* TO <ferry's user>`,
    );
  }
}

/** What to tell an operator about transactions ferry waits for. */
export function describeWait(open: readonly OpenTransaction[], server: string): string {
  const first = open[0]!;
  const who = [first.user, first.host].filter(Boolean).join('@');
  return (
    `waiting for ${open.length} transaction${open.length > 1 ? 's' : ''} on ${server} open since before the sweep began to end (it may hold a row not yet visible); ` +
    `oldest: thread ${first.thread}${who ? ` (${who})` : ''}, started ${first.started}, ${first.rowsModified} rows changed` +
    (first.query ? `, running: ${first.query.replace(/\s+/g, ' ').slice(0, 80)}` : '') +
    `. If it was left open by mistake: KILL ${first.thread}`
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
  /** When the round began (server time), or null between rounds. */
  horizonAt: string | null;
  /** The ledger's top when the round began: every id up to it was handed out before `horizonAt`. */
  horizonTop: Id | null;
  /** The transactions open at `horizonAt` have all ended. */
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
}

export interface SweepSettings extends CopySettings {
  readonly catchUp: { readonly quietSeconds: number; readonly pollSeconds: number };
}

type SweepMigration = Migration<SweepSettings, SweepingState, string>;

export type SweepOutcome = CopyOutcome | { kind: 'wait'; seconds: number; note: string };

/**
 * Looks again at every id that held no row when ferry last looked, and copies what arrived since,
 * until nothing is left to find. Round after round:
 *
 * 1. Settle: note the server's time and the ledger's top, then wait until every transaction open
 *    at that time that may hold rows has ended. Every id up to the top was handed out before that
 *    time (AUTO_INCREMENT only grows), so its row is now visible or never will be.
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
  if (w.horizonAt === null) {
    Object.assign(w, { round: w.round + 1, horizonTop: await ledger.top(), horizonAt: await serverNow(m.source), settled: false, probedAfter: null, foundInRound: 0, extendedInRound: 0 });
    await save(m);
  }
  if (!w.settled) {
    const open = await transactionsOpenSince(m.source, w.horizonAt!);
    if (open.length) return { kind: 'wait', seconds: m.input.catchUp.pollSeconds, note: describeWait(open, m.source.name) };
    w.settled = true;
    await save(m);
  }
  while (w.horizonTop !== null) {
    if (!timeLeft(m)) return { kind: 'budget' };
    const decision = await checkThrottle(m);
    if (decision.throttled) return { kind: 'throttled', reason: decision.reason, waitSeconds: decision.waitSeconds };
    const entries = await ledger.unsettled(w.probedAfter, w.horizonTop, 100);
    if (entries.length === 0) break;
    for (const e of entries) {
      const found = await idsInHoles(m.source, source, m.tables.idColumn, e.holes);
      const late = found.length ? await deliverRows(m.tables, found) : [];
      await ledger.update({ ...e, rows: (BigInt(e.rows) + BigInt(late.length)).toString(), holes: fillHoles(e.holes, late), settled: true });
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
    const ids = await idsAfter(m.source, source, m.tables.idColumn, await ledger.top(), s.chunkSpan);
    if (ids.length === 0) break;
    const n = await deliverAndRecord(m.tables, ledger, ids, s.idFloor);
    w.extendedInRound += n;
    w.newRows = (BigInt(w.newRows) + BigInt(n)).toString();
    s.quietSince = new Date(m.deps.now()).toISOString();
    await save(m);
    report(m, `copied ${n} rows written to the source since, ids ${ids[0]}..${ids[ids.length - 1]}`);
  }
  const quietFor = (m.deps.now() - Date.parse(s.quietSince ?? new Date(m.deps.now()).toISOString())) / 1000;
  const { quietSeconds, pollSeconds } = m.input.catchUp;
  const found = w.foundInRound + w.extendedInRound;
  w.horizonAt = null;
  if (found === 0 && quietFor >= quietSeconds && !(await ledger.anyUnsettled())) {
    await save(m);
    return { kind: 'caught-up' };
  }
  await save(m);
  const seconds = found > 0 ? 0 : Math.max(1, Math.min(pollSeconds, Math.ceil(quietSeconds - quietFor)));
  return { kind: 'wait', seconds, note: `sweep round ${w.round}: ${w.foundInRound} late rows, ${w.extendedInRound} new rows; quiet for ${Math.floor(quietFor)} of ${quietSeconds} s` };
}
