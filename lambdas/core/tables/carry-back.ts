import { str, type SqlConnection, type SqlRow } from '../ports/sql.ts';
import { differingIds, type RangeChecksum } from '../checksum.ts';
import { DatabaseError, ERRNO } from '../errors.ts';
import { qualified, quoteIdent, type TableRef } from '../identifiers.ts';
import type { KeyRange, KeyShape, KeyValue } from '../keys.ts';
import { IDS_PER_STATEMENT, insertRows, keyOf, readList, type CopyTables } from './copier.ts';
import { checksumRange, insertRefusing, rowHashesBothSides } from './verifier.ts';
import { DeliveryLedger, KeyLedger } from './ledger.ts';
import { copyWindowOpen, loggedAmongCopied } from './copy-window.ts';

/**
 * table-copy's way back (see lambdas/table-copy/revert.ts): the old table's rows of a range made
 * the new table's again, the new table read as the source of `CopyTables` the other way round
 * (`backwards`). Works across two servers: nothing but the old table is written, and nothing but
 * ferry writes the old table once the copy flags are on.
 */

/** A copy's tables the other way round: the new table is read, the old one written, each column by its own name. */
export function backwards(t: CopyTables): CopyTables {
  return {
    ...t,
    source: t.target,
    target: t.source,
    sourceTable: t.targetTable,
    targetTable: t.sourceTable,
    keyIndex: t.targetKeyIndex ?? t.keyIndex,
    targetKeyIndex: t.keyIndex,
    columns: t.targetColumns,
    targetColumns: t.columns,
    hash: { source: t.hash.target, target: t.hash.source },
    loadCharset: null,
    readLock: false,
  };
}

/** A row the old table refuses, named with the database's reason. */
export class RowsRefused extends Error {
  constructor(readonly rows: readonly string[]) {
    super(rows.join('; '));
  }
}

export interface CarryOptions {
  /**
   * Whether a row the old table has and the new one lacks is deleted (the application deleted it
   * in the new table), and one it holds otherwise is overwritten. False where the old table's rows
   * were never delivered (above the ledger): such a row was written to the old table after the
   * sweep, and is named instead (RowsRefused).
   */
  readonly delivered: boolean;
}

/** The new table's rows with these keys, each with its key (see readList). */
async function readRows(back: CopyTables, keys: readonly KeyValue[]): Promise<Map<KeyValue, SqlRow>> {
  const key = keyOf(back);
  const out = new Map<KeyValue, SqlRow>();
  for (let i = 0; i < keys.length; i += IDS_PER_STATEMENT) {
    const these = key.oneOf(keys.slice(i, i + IDS_PER_STATEMENT));
    const rows = await back.source.query(`SELECT ${key.select()}, ${readList(back)} FROM ${qualified(back.sourceTable)} WHERE ${these.sql}`, these.params);
    for (const r of rows) out.set(key.fromRow(r), r);
  }
  return out;
}

/** One row of the new table written over the old table's row with its key, in place (an UPDATE: no delete and insert for the old table's triggers and cascades), strictly. */
async function updateRow(conn: SqlConnection, back: CopyTables, id: KeyValue, row: SqlRow): Promise<void> {
  const key = keyOf(back);
  const keyNames = new Set(key.columns.map((c) => c.name.toLowerCase()));
  const pairs = back.columns.map((c, i) => [c, back.targetColumns[i]!] as const).filter(([c]) => !keyNames.has(c.toLowerCase()));
  if (pairs.length === 0) return;
  const it = key.equals(id);
  await insertRefusing(conn, `UPDATE ${qualified(back.targetTable)} SET ${pairs.map(([, c]) => `${quoteIdent(c)} = ?`).join(', ')} WHERE ${it.sql}`, [...pairs.map(([c]) => row[c] ?? null), ...it.params]);
}

/** Deletes, overwrites and inserts what the comparison found, in one transaction on the old table's server. */
async function write(back: CopyTables, gone: readonly KeyValue[], changed: readonly KeyValue[], missing: readonly KeyValue[], rows: Map<KeyValue, SqlRow>): Promise<void> {
  const key = keyOf(back);
  await back.target.transaction(async (tx) => {
    for (let i = 0; i < gone.length; i += IDS_PER_STATEMENT) {
      const these = key.oneOf(gone.slice(i, i + IDS_PER_STATEMENT));
      await tx.execute(`DELETE FROM ${qualified(back.targetTable)} WHERE ${these.sql}`, these.params);
    }
    for (const id of changed) if (rows.has(id)) await updateRow(tx, back, id, rows.get(id)!);
    const fresh = missing.flatMap((id) => (rows.has(id) ? [rows.get(id)!] : []));
    await insertRows({ ...back, target: tx }, fresh, (sql, params) => insertRefusing(tx, sql, params));
  });
}

/** Which of these rows the old table refuses, each tried alone in a transaction rolled back at once (at most 10). */
async function refusedRows(back: CopyTables, changed: readonly KeyValue[], missing: readonly KeyValue[], rows: Map<KeyValue, SqlRow>): Promise<string[]> {
  const key = keyOf(back);
  const out: string[] = [];
  const undo = new Error('rolled back');
  for (const id of [...changed, ...missing]) {
    if (out.length >= 10 || !rows.has(id)) continue;
    await back.target
      .transaction(async (tx) => {
        try {
          if (changed.includes(id)) await updateRow(tx, back, id, rows.get(id)!);
          else await insertRows({ ...back, target: tx }, [rows.get(id)!], (sql, params) => insertRefusing(tx, sql, params));
        } catch (err) {
          if (!(err instanceof DatabaseError)) throw err;
          out.push(`${key.isInteger ? 'id' : `key (${key.names})`} ${id}: ${err.message.replace(/^[^:]*: statement failed: /, '')}`);
        }
        throw undo;
      })
      .catch((err) => {
        if (err !== undo) throw err;
      });
  }
  return out;
}

/**
 * Makes the old table's rows of a range what the new table holds: rows the old table lacks are
 * inserted, rows it holds otherwise are overwritten in place, rows the new table lacks are deleted
 * (see CarryOptions), strictly, in one transaction on the old table. The new table is read without
 * locks: the application keeps writing it, and what it writes after the range was compared stays
 * in the new table (its rows are read at the end, so a row written meanwhile goes in as it is then;
 * one deleted meanwhile is not written). A row the old table refuses (a value its column cannot
 * hold, a duplicate on a unique key of its own) rolls the range back and fails with every such row
 * named (RowsRefused). Returns the rows that differed, and the old table's checksum of the range
 * at the end.
 */
export async function carryBack(back: CopyTables, range: KeyRange, options: CarryOptions): Promise<{ written: number; old: RangeChecksum }> {
  const key = keyOf(back);
  const [inNew, inOld] = await rowHashesBothSides(back, range);
  const diffs = differingIds(inNew, inOld, Number.MAX_SAFE_INTEGER);
  if (diffs.length) {
    const of = (problem: string) => diffs.filter((d) => d.problem === problem).map((d) => d.id);
    const [gone, changed, missing] = [of('extra in target'), of('differs'), of('missing in target')];
    if (!options.delivered && (gone.length || changed.length)) {
      const named = [...gone, ...changed].slice(0, 10).map((id) => `${key.isInteger ? 'id' : `key (${key.names})`} ${id}`);
      throw new RowsRefused([`${back.targetTable.table} holds rows above what was delivered that ${gone.length ? 'are not' : 'differ from those'} in ${back.sourceTable.table}: ${named.join(', ')} (written to ${back.targetTable.table} after the sweep)`]);
    }
    const rows = await readRows(back, [...changed, ...missing]);
    try {
      await write(back, gone, changed, missing, rows);
    } catch (err) {
      if (!(err instanceof DatabaseError) || (err as DatabaseError).errno === ERRNO.LOCK_WAIT_TIMEOUT || (err as DatabaseError).errno === ERRNO.DEADLOCK) throw err;
      const named = await refusedRows(back, changed, missing, rows);
      throw new RowsRefused(named.length ? named : [`${key.isInteger ? 'ids' : `keys (${key.names})`} ${key.describe(range)}: ${err.message.replace(/^[^:]*: statement failed: /, '')}`]);
    }
  }
  return { written: diffs.length, old: await checksumRange(back.target, back.targetTable, key, back.hash.target, range) };
}

/** The most rows the old table's lag is counted up to: a page refreshed often never reads a huge table through. */
export const LAG_COUNTED = 1_000_000;

/**
 * How far the old table trails the new one while a revert is possible, in words: the rows of the
 * new table above the ledger (the application's inserts since the copy flags), counted up to
 * LAG_COUNTED. What else the application changed there (rows it updated or deleted, and with a key
 * that does not grow, rows it inserted between keys copied) is known only when a revert compares,
 * unless the revert window's log names it (`logged`: its ids among those copied, see copy-window.ts).
 */
export async function oldTableLag(
  conn: SqlConnection,
  tables: { readonly old: TableRef; readonly new: TableRef },
  key: KeyShape,
  top: KeyValue | null,
  logged: { rows: string; since: string | null } | null = null,
): Promise<string> {
  const above = top === null ? null : key.after(top);
  const rows = await conn.query(`SELECT COUNT(*) AS n FROM (SELECT 1 FROM ${qualified(tables.new)}${above ? ` WHERE ${above.sql}` : ''} LIMIT ${LAG_COUNTED + 1}) x`, above?.params ?? []);
  const n = Number(str(rows[0] ?? {}, 'n') ?? '0');
  const count = n > LAG_COUNTED ? `more than ${LAG_COUNTED.toLocaleString('en-US')}` : n.toLocaleString('en-US');
  const where = top === null ? '' : ` (${key.isInteger ? 'ids' : `keys (${key.names})`} above ${top})`;
  const rest = key.isInteger ? 'rows it updated or deleted there' : 'rows it inserted between the keys copied, updated or deleted there';
  const lacks = `old table: ${tables.old.database}.${tables.old.table} lacks the ${count} rows the application inserted in ${tables.new.database}.${tables.new.table} since the copy flags${where}`;
  if (!logged) return `${lacks}; ${rest} are found when ferry revert compares the two`;
  const since = logged.rows === '0' || !logged.since ? '' : ` (the oldest of those writes at ${logged.since}, the writer's clock)`;
  return `${lacks}, and ${logged.rows} rows it updated or deleted among the ids copied are named by the revert window's log${since}: ferry revert compares the spans they fall in`;
}

/** The highest key a migration's ledger covers (a key ledger's last span's end, or the delivery ledger's highest id), null when it is empty; the ledger beside the checkpoint in `conn`'s target database. */
export async function ledgerTop(conn: SqlConnection, input: { readonly migrationId: string; readonly target: TableRef }, key: KeyShape): Promise<KeyValue | null> {
  return key.isInteger
    ? new DeliveryLedger(conn, input.target.database, input.migrationId).top()
    : ((await new KeyLedger(conn, input.target.database, input.migrationId).last())?.hi ?? null);
}

/** oldTableLag from the ledger's top, and the revert window's log when it is open (see copy-window.ts). */
export async function oldTableLagOf(conn: SqlConnection, input: { readonly migrationId: string; readonly source: TableRef; readonly target: TableRef }, key: KeyShape): Promise<string> {
  const top = await ledgerTop(conn, input, key);
  const logged = key.isInteger && (await copyWindowOpen(conn, input.migrationId, input.target)) ? await loggedAmongCopied(conn, input.migrationId, input.target, top) : null;
  return oldTableLag(conn, { old: input.source, new: input.target }, key, top, logged);
}
