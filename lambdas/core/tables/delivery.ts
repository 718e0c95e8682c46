import { rowHashesOfIdsSql, type HashColumn } from '../checksum.ts';
import { VerificationFailed } from '../errors.ts';
import { fillHoles, holesAround, inHoles } from '../holes.ts';
import { addId, compareIds, type Id } from '../ids.ts';
import { qualified } from '../identifiers.ts';
import { str, type SqlConnection } from '../ports/sql.ts';
import type { TableRef } from '../identifiers.ts';
import { copyIds, IDS_PER_STATEMENT, type CopyTables } from './copier.ts';
import type { DeliveryLedger, LedgerEntry } from './ledger.ts';

async function hashesOf(conn: SqlConnection, table: TableRef, t: CopyTables, columns: readonly HashColumn[], ids: readonly Id[]): Promise<Map<Id, string>> {
  const out = new Map<Id, string>();
  for (let i = 0; i < ids.length; i += IDS_PER_STATEMENT) {
    const batch = ids.slice(i, i + IDS_PER_STATEMENT);
    for (const r of await conn.query(rowHashesOfIdsSql(qualified(table), t.idColumn, columns, batch.length), batch)) out.set(str(r, 'id')!, str(r, 'hash')!);
  }
  return out;
}

/**
 * Puts these source rows into the target, each one exactly once: a row the target lacks is
 * copied; one it holds with the same content was copied before (a run that stopped before
 * recording it); one it holds with other content is the application's row under an id the old
 * table also handed out, and stops everything — nothing is overwritten and nothing will be deleted.
 * Returns the ids delivered: those the source still holds.
 */
export async function deliverRows(t: CopyTables, ids: readonly Id[]): Promise<Id[]> {
  if (ids.length === 0) return [];
  const [source, target] = await Promise.all([hashesOf(t.source, t.sourceTable, t, t.hash.source, ids), hashesOf(t.target, t.targetTable, t, t.hash.target, ids)]);
  const collisions = [...source].filter(([id, hash]) => target.has(id) && target.get(id) !== hash).map(([id]) => id);
  if (collisions.length) {
    throw new VerificationFailed(
      `ids ${collisions.slice(0, 10).join(', ')}${collisions.length > 10 ? ` and ${collisions.length - 10} more` : ''} of ${t.sourceTable.table} are not in the target yet, ` +
        `but ${t.targetTable.table} holds other rows under those ids (written there by the application): the old table handed out ids the new one had already used. ` +
        'Nothing was overwritten and no source row was deleted. Move those rows by hand (new ids), then run again; next time choose a larger idOffset.',
    );
  }
  await copyIds(t, [...source.keys()].filter((id) => !target.has(id)));
  return [...source.keys()].sort(compareIds);
}

/** Whether the ledger says `id` was delivered: inside a span and not in its holes. */
export function delivered(entries: readonly LedgerEntry[], id: Id): boolean {
  const e = entries.find((x) => compareIds(x.lo, id) <= 0 && compareIds(id, x.hi) <= 0);
  return e !== undefined && !inHoles(e.holes, id);
}

/**
 * Delivers the source rows among `ids` (ascending, read from the source just now) that the ledger
 * does not count as delivered, and records them: holes they fill are filled, and ids above the
 * ledger's top become a new span from just above it to the last of them, whose holes are the ids
 * between them the source does not hold. So `ids` must include every source id in that stretch.
 * Returns how many rows were newly delivered.
 */
export async function deliverAndRecord(t: CopyTables, ledger: DeliveryLedger, ids: readonly Id[], floor: Id): Promise<number> {
  if (ids.length === 0) return 0;
  const top = await ledger.top();
  const entries = top === null ? [] : await ledger.overlapping(ids[0]!, ids[ids.length - 1]!);
  const inside = top === null ? [] : ids.filter((id) => compareIds(id, top) <= 0);
  const above = top === null ? ids : ids.filter((id) => compareIds(id, top) > 0);
  const wanted = [...inside.filter((id) => !delivered(entries, id)), ...above];
  const done = await deliverRows(t, wanted);
  for (const e of entries) {
    const mine = done.filter((id) => compareIds(e.lo, id) <= 0 && compareIds(id, e.hi) <= 0);
    if (mine.length) await ledger.update({ ...e, rows: (BigInt(e.rows) + BigInt(mine.length)).toString(), holes: fillHoles(e.holes, mine) });
  }
  if (above.length) {
    const lo = top === null ? floor : addId(top, 1);
    const hi = above[above.length - 1]!;
    const present = done.filter((id) => compareIds(id, lo) >= 0);
    const holes = holesAround(lo, hi, present);
    await ledger.record({ lo, hi, rows: String(present.length), checksum: null, holes, settled: holes.length === 0 });
  }
  return done.length;
}
