import { rowHashExpr, type HashColumn } from '../checksum.ts';
import type { KeyValue } from '../keys.ts';
import { VerificationFailed } from '../errors.ts';
import { fillHoles, holesAround, inHoles, type Hole } from '../holes.ts';
import { addId, compareIds, type Id } from '../ids.ts';
import { qualified, type TableRef } from '../identifiers.ts';
import { str, type SqlConnection, type SqlRow } from '../ports/sql.ts';
import { copyIds, IDS_PER_STATEMENT, keyOf, type CopyTables } from './copier.ts';
import type { DeliveryLedger, LedgerEntry } from './ledger.ts';

/** The row hashes of these keys' rows in a table, by key (see KeyShape.encode); keys it lacks are absent. */
export async function hashesOf(conn: SqlConnection, table: TableRef, t: Pick<CopyTables, 'key' | 'idColumn'>, columns: readonly HashColumn[], ids: readonly KeyValue[]): Promise<Map<KeyValue, string>> {
  const key = keyOf(t);
  const out = new Map<KeyValue, string>();
  for (let i = 0; i < ids.length; i += IDS_PER_STATEMENT) {
    const these = key.oneOf(ids.slice(i, i + IDS_PER_STATEMENT));
    for (const r of await conn.query(`SELECT ${key.select()}, ${rowHashExpr(columns)} AS hash FROM ${qualified(table)} WHERE ${these.sql}`, these.params)) out.set(key.fromRow(r), str(r, 'hash')!);
  }
  return out;
}

const listed = (ids: readonly Id[]) => `${ids.slice(0, 10).join(', ')}${ids.length > 10 ? ` and ${ids.length - 10} more` : ''}`;

/**
 * Puts these source rows into the target, each one exactly once, and hands the ids delivered
 * (those the source still holds) to `record`, in the same transaction on the target: a row is
 * never in the target without the ledger saying so, nor the other way round.
 *
 * A row the target lacks is copied; one it holds with the same content was copied before; one it
 * holds with other content is the application's row under an id the old table also handed out,
 * and stops everything. After the copy every row is read back: one the target refused or changed
 * (a unique key of its own, a narrower type, another character set) stops everything too, with the
 * database's reason. Stopping rolls back: nothing is recorded as delivered, so nothing is deleted.
 */
export async function deliverRows(t: CopyTables, ids: readonly Id[], record: (tx: SqlConnection, delivered: Id[]) => Promise<void> = async () => undefined): Promise<Id[]> {
  if (ids.length === 0) return [];
  const [source, target] = await Promise.all([hashesOf(t.source, t.sourceTable, t, t.hash.source, ids), hashesOf(t.target, t.targetTable, t, t.hash.target, ids)]);
  const collisions = [...source].filter(([id, hash]) => target.has(id) && target.get(id) !== hash).map(([id]) => id);
  if (collisions.length) {
    throw new VerificationFailed(
      `ids ${listed(collisions)} of ${t.sourceTable.table} are not in the target yet, ` +
        `but ${t.targetTable.table} holds other rows under those ids (written there by the application): the old table handed out ids the new one had already used. ` +
        'Nothing was overwritten and no source row was deleted. Move those rows by hand (new ids), then run again; next time choose a larger idOffset.',
    );
  }
  const delivered = keyOf(t).isInteger ? [...source.keys()].sort(compareIds) : [...source.keys()];
  const missing = delivered.filter((id) => !target.has(id));
  return t.target.transaction(async (tx) => {
    await copyIds({ ...t, target: tx, inTransaction: true }, missing);
    if (missing.length) {
      const [now, written] = await Promise.all([hashesOf(t.source, t.sourceTable, t, t.hash.source, missing), hashesOf(tx, t.targetTable, t, t.hash.target, missing)]);
      const refused = missing.filter((id) => now.has(id) && written.get(id) !== now.get(id));
      if (refused.length) {
        const warning = await refusalReason(tx, t, refused);
        throw new VerificationFailed(
          `ids ${listed(refused)} of ${t.sourceTable.table} cannot be written to ${t.targetTable.table} as they are: ` +
            `${warning ? `${str(warning, 'Message')} (error ${str(warning, 'Code')})` : 'the target refused them or changed their values'} ` +
            '(a unique key of its own, a narrower type, another character set). Nothing was recorded as delivered and no source row was deleted; fix those rows or the target, then run again.',
        );
      }
    }
    await record(tx, delivered);
    return delivered;
  }, { readCommitted: true });
}

/**
 * The database's own words for why it refused or changed these rows: within the transaction about
 * to be rolled back, they are taken out and written once more, and the first warning is read.
 */
async function refusalReason(tx: SqlConnection, t: CopyTables, refused: readonly Id[]): Promise<SqlRow | undefined> {
  if (!tx.sessions) return undefined;
  const some = refused.slice(0, 100);
  const these = keyOf(t).oneOf(some);
  await tx.execute(`DELETE FROM ${qualified(t.targetTable)} WHERE ${these.sql}`, these.params);
  await copyIds({ ...t, target: tx, inTransaction: true }, some);
  return (await tx.query('SHOW WARNINGS'))[0];
}

/**
 * Whether the ledger says `id` was delivered: inside a span and not in its holes. In a span whose
 * holes were not kept it cannot say, and the row is delivered again (deliverRows finds it in the
 * target as it was, and leaves it).
 */
export function delivered(entries: readonly LedgerEntry[], id: Id): boolean {
  const e = entries.find((x) => compareIds(x.lo, id) <= 0 && compareIds(id, x.hi) <= 0);
  return e !== undefined && e.holes !== null && !inHoles(e.holes, id);
}

/** The holes that may still fill: the parts of `holes` at or above the low water (all of them when it is not known). */
export function openHoles(holes: readonly Hole[], low: Id | null): Hole[] {
  if (low === null) return [...holes];
  return holes.flatMap(([a, b]): Hole[] => (compareIds(b, low) < 0 ? [] : [[compareIds(a, low) < 0 ? low : a, b]]));
}

/**
 * Delivers the source rows among `ids` (ascending, read from the source just now) that the ledger
 * does not count as delivered, and records them in the same transaction: holes they fill are
 * filled, and ids above the ledger's top become a new span from just above it to the last of them,
 * whose holes are the ids between them the source does not hold that may still fill (those at or
 * above `low`, the low water asked for before `ids` were read; see horizon.ts). So `ids` must
 * include every source id in that stretch. Returns how many rows were newly delivered.
 */
export async function deliverAndRecord(t: CopyTables, ledger: DeliveryLedger, ids: readonly Id[], floor: Id, low: Id | null): Promise<number> {
  if (ids.length === 0) return 0;
  const top = await ledger.top();
  const entries = top === null ? [] : await ledger.overlapping(ids[0]!, ids[ids.length - 1]!);
  const inside = top === null ? [] : ids.filter((id) => compareIds(id, top) <= 0);
  const above = top === null ? ids : ids.filter((id) => compareIds(id, top) > 0);
  const wanted = [...inside.filter((id) => !delivered(entries, id)), ...above];
  const done = await deliverRows(t, wanted, async (tx, rows) => {
    const book = ledger.on(tx);
    for (const e of entries) {
      const mine = rows.filter((id) => compareIds(e.lo, id) <= 0 && compareIds(id, e.hi) <= 0);
      if (mine.length) await book.update({ ...e, rows: (BigInt(e.rows) + BigInt(mine.length)).toString(), holes: e.holes === null ? null : fillHoles(e.holes, mine) });
    }
    if (above.length) {
      const lo = top === null ? floor : addId(top, 1);
      const hi = above[above.length - 1]!;
      const present = rows.filter((id) => compareIds(id, lo) >= 0);
      const holes = openHoles(holesAround(lo, hi, present), low);
      await book.record({ lo, hi, rows: String(present.length), checksum: null, holes, settled: holes.length === 0 });
    }
  });
  return done.length;
}
