import { ERRNO } from '../errors.ts';
import { addId, minId, type Id } from '../ids.ts';
import { qualified, quoteIdent, type TableRef } from '../identifiers.ts';
import { scalar, type SqlConnection } from '../ports/sql.ts';
import { openWriters } from './sweeper.ts';

/**
 * Which ids that hold no row can still receive one. InnoDB hands out an AUTO_INCREMENT id inside
 * the inserting transaction, when it inserts, and the id counter only grows: an id that held no
 * row when ferry read a range can fill later only by a transaction that was open at that moment,
 * and a transaction that started at time s holds only ids above the table's highest id at s. So
 * the holes below the lowest id any open writer could hold (the low water) are final: nothing
 * will ever be written there, except by a statement naming the id itself.
 *
 * The id clock is what makes "the table's highest id at s" known: samples of (server time, highest
 * id), the time read after the id, in the server's SYSTEM time zone as INNODB_TRX shows
 * `trx_started` (whatever the session's zone), taken each time the low water is asked for, at most
 * one a second; old ones are thinned, so 120 samples reach back hours with the newest a second apart.
 */
export type IdClock = [string, Id][];

const CLOCK_SAMPLES = 120;

/**
 * How old INNODB_TRX may be: it is a cache, refreshed at most every 100 ms, so a transaction begun
 * just before it was read may be missing from it. Such a transaction holds only ids above a clock
 * sample this much older than the read, which bounds it instead.
 */
export const UNSEEN_MARGIN_MS = 1500;

const millis = (at: string) => Date.parse(`${at.slice(0, 23).replace(' ', 'T')}Z`);

/**
 * The low water of the source table now, to be asked for before the range it is used for is read:
 * ids below it that hold no row are final holes. Null when it cannot be known (a write transaction
 * open since before the clock's first sample, a clock younger than UNSEEN_MARGIN_MS, or a user
 * without PROCESS, who cannot see the transactions): then every hole may still fill. `clock` is updated.
 */
export async function lowWater(conn: SqlConnection, table: TableRef, idColumn: string, clock: IdClock): Promise<Id | null> {
  // The id first, then the time: the id was read before that time, so it bounds every transaction begun after it.
  const top = await scalar(conn, `SELECT MAX(${quoteIdent(idColumn)}) FROM ${qualified(table)}`);
  const at = (await scalar(conn, "SELECT DATE_FORMAT(CONVERT_TZ(NOW(6), @@session.time_zone, 'SYSTEM'), '%Y-%m-%d %H:%i:%s.%f')"))!;
  if (top === null) return null;
  remember(clock, at, top);
  const writers = await openWriters(conn).catch((err: unknown) => {
    // without PROCESS the open transactions cannot be seen: every hole may still fill
    if ((err as { errno?: number }).errno === ERRNO.NO_PROCESS_PRIVILEGE) return null;
    throw err;
  });
  if (writers === null) return null;
  // a writer begun too recently for the cache to show it: bounded by a sample older than the cache can be
  const unseen = [...clock].reverse().find(([when]) => millis(when) <= millis(at) - UNSEEN_MARGIN_MS);
  if (!unseen) return null;
  let low: Id = addId(unseen[1], 1);
  for (const w of writers) {
    // trx_started counts whole seconds: the transaction began at or after it, so only samples taken before that second began bound it.
    const started = w.started.slice(0, 19);
    const before = [...clock].reverse().find(([when]) => when.slice(0, 19) < started);
    if (!before) return null;
    low = minId(low, addId(before[1], 1));
  }
  return low;
}

/** Whether the clock reaches far enough back for the low water to be known without a writer older than it. */
export function clockReady(clock: IdClock): boolean {
  const newest = clock[clock.length - 1];
  return clock.length > 0 && millis(clock[0]![0]) <= millis(newest![0]) - UNSEEN_MARGIN_MS;
}

function remember(clock: IdClock, at: string, top: Id): void {
  const last = clock[clock.length - 1];
  // one a second is enough for trx_started's whole seconds
  if (last && last[0].slice(0, 19) === at.slice(0, 19)) return;
  clock.push([at, top]);
  // past the limit, every other one of the older half goes: the newest stay a second apart, the oldest reach far back
  if (clock.length > CLOCK_SAMPLES) {
    const half = CLOCK_SAMPLES / 2;
    const older = clock.slice(0, half).filter((_, i) => i % 2 === 0);
    clock.splice(0, half, ...older);
  }
}

/** Whether the connection's user may see the server's open transactions (INNODB_TRX needs PROCESS), which the low water is read from. */
export async function seesOpenTransactions(conn: SqlConnection): Promise<boolean> {
  try {
    await openWriters(conn);
    return true;
  } catch (err) {
    if ((err as { errno?: number }).errno === ERRNO.NO_PROCESS_PRIVILEGE) return false;
    throw err;
  }
}
