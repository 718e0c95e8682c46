import { ERRNO } from '../errors.ts';
import { addId, minId, type Id } from '../ids.ts';
import { qualified, quoteIdent, type TableRef } from '../identifiers.ts';
import { str, type SqlConnection } from '../ports/sql.ts';
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
 * id), taken each time the low water is asked for, at most one a second; old ones are thinned, so
 * 120 samples reach back hours with the newest a second apart.
 */
export type IdClock = [string, Id][];

const CLOCK_SAMPLES = 120;

/**
 * The low water of the source table now, to be asked for before the range it is used for is read:
 * ids below it that hold no row are final holes. Null when it cannot be known (a write transaction
 * open since before the clock's first sample, or a user without PROCESS, who cannot see them): then every hole may still fill. `clock` is updated.
 */
export async function lowWater(conn: SqlConnection, table: TableRef, idColumn: string, clock: IdClock): Promise<Id | null> {
  // The sample first, then the writers: one that starts after the sample holds only ids above its highest.
  const [sample] = await conn.query(`SELECT DATE_FORMAT(NOW(6), '%Y-%m-%d %H:%i:%s.%f') AS at, MAX(${quoteIdent(idColumn)}) AS top FROM ${qualified(table)}`);
  const at = str(sample ?? {}, 'at')!;
  const top = str(sample ?? {}, 'top');
  if (top === null) return null;
  remember(clock, at, top);
  let low: Id = addId(top, 1);
  const writers = await openWriters(conn).catch((err: unknown) => {
    // without PROCESS the open transactions cannot be seen: every hole may still fill
    if ((err as { errno?: number }).errno === ERRNO.NO_PROCESS_PRIVILEGE) return null;
    throw err;
  });
  if (writers === null) return null;
  for (const w of writers) {
    // trx_started counts whole seconds: the transaction began at or after it, so only samples taken before that second began bound it.
    const started = w.started.slice(0, 19);
    const before = [...clock].reverse().find(([when]) => when.slice(0, 19) < started);
    if (!before) return null;
    low = minId(low, addId(before[1], 1));
  }
  return low;
}

/** Whether the clock's oldest sample is from a second before `at`: only then can it bound a writer that started just now. */
export function clockReady(clock: IdClock, at: string): boolean {
  return clock.length > 0 && clock[0]![0].slice(0, 19) < at.slice(0, 19);
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
