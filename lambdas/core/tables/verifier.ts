import { type SqlConnection, type SqlRow, str } from '../ports/sql.ts';
import { checksumSelect, differingIds, rowHashExpr, sameChecksum, type HashColumn, type RangeChecksum } from '../checksum.ts';
import { DatabaseError, ERRNO, VerificationFailed, type FerryError } from '../errors.ts';
import type { Id, IdRange } from '../ids.ts';
import { qualified, quoteIdent, type TableRef } from '../identifiers.ts';
import { KeyShape, type KeyRange, type KeyValue } from '../keys.ts';
import { copyRange, IDS_PER_STATEMENT, insertRows, keyOf, lockingRange, readList, type CopyTables } from './copier.ts';

/** Row count and checksum of a range of keys (an integer key: of ids). */
export async function checksumRange(conn: SqlConnection, table: TableRef, key: KeyShape | string, columns: readonly HashColumn[], range: KeyRange): Promise<RangeChecksum> {
  const where = KeyShape.of(key).within(range);
  const rows = await conn.query(`SELECT ${checksumSelect(columns)} FROM ${qualified(table)} WHERE ${where.sql}`, where.params);
  const r = rows[0] ?? {};
  return { rowCount: str(r, 'row_count') ?? '0', checksum: str(r, 'checksum') ?? '0' };
}

/** Per-row hashes of a range, in key order, each row named by its key (see KeyShape.encode); `lock` ends the statement. */
export async function rowHashes(conn: SqlConnection, table: TableRef | string, key: KeyShape | string, columns: readonly HashColumn[], range: KeyRange, lock = ''): Promise<{ id: KeyValue; hash: string }[]> {
  const shape = KeyShape.of(key);
  const where = shape.within(range);
  const from = typeof table === 'string' ? table : qualified(table);
  const rows = await conn.query(`SELECT ${shape.select()}, ${rowHashExpr(columns)} AS hash FROM ${from} WHERE ${where.sql} ORDER BY ${shape.orderBy()}${lock}`, where.params);
  return rows.map((r) => ({ id: shape.fromRow(r), hash: str(r, 'hash')! }));
}

/** Per-row hashes of a range on both sides of a copy, read at the same time. */
export function rowHashesBothSides(t: CopyTables, range: KeyRange): Promise<[{ id: KeyValue; hash: string }[], { id: KeyValue; hash: string }[]]> {
  return Promise.all([
    rowHashes(t.source, t.sourceTable, keyOf(t), t.hash.source, range),
    rowHashes(t.target, t.targetTable, keyOf(t), t.hash.target, range),
  ]);
}

/**
 * Which of these keys' rows differ between the source and the target, both on `conn`'s server,
 * read under one consistent snapshot: a row on one side only differs, one on neither does not.
 */
export async function differingKeys(conn: SqlConnection, t: CopyTables, keys: readonly KeyValue[]): Promise<KeyValue[]> {
  if (keys.length === 0) return [];
  const key = keyOf(t);
  const out: KeyValue[] = [];
  for (let i = 0; i < keys.length; i += IDS_PER_STATEMENT) {
    const these = keys.slice(i, i + IDS_PER_STATEMENT);
    const where = key.oneOf(these);
    const read = async (table: TableRef, columns: readonly HashColumn[]) =>
      new Map((await conn.query(`SELECT ${key.select()}, ${rowHashExpr(columns)} AS hash FROM ${qualified(table)} WHERE ${where.sql}`, where.params)).map((r) => [key.fromRow(r), str(r, 'hash')!]));
    await conn.execute('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    let source: Map<KeyValue, string>;
    let target: Map<KeyValue, string>;
    try {
      source = await read(t.sourceTable, t.hash.source);
      target = await read(t.targetTable, t.hash.target);
    } finally {
      await conn.execute('COMMIT');
    }
    out.push(...these.filter((k) => source.get(k) !== target.get(k)));
  }
  return out;
}

export interface RangeVerdict {
  readonly range: IdRange;
  readonly rows: string;
  /** The range checksum both sides agreed on. */
  readonly checksum: string;
  /** True when the first comparison differed and a re-copy made the range equal. */
  readonly repaired: boolean;
}

/** A range's count and checksum on both sides of a copy, read at the same time: equal or not. */
export async function compareRange(t: CopyTables, range: KeyRange): Promise<{ equal: boolean; source: RangeChecksum; target: RangeChecksum }> {
  const [source, target] = await Promise.all([
    checksumRange(t.source, t.sourceTable, keyOf(t), t.hash.source, range),
    checksumRange(t.target, t.targetTable, keyOf(t), t.hash.target, range),
  ]);
  return { equal: sameChecksum(source, target), source, target };
}

/**
 * Compares a range by count and checksum; a range that differs is copied again and compared
 * once more. A range still wrong after that fails with the ids at fault: a row in the target
 * with the same id and other content is never overwritten, because it may be the application's.
 */
export async function verifyRange(t: CopyTables, range: IdRange): Promise<RangeVerdict> {
  const first = await compareRange(t, range);
  if (first.equal) return { range, rows: first.source.rowCount, checksum: first.source.checksum, repaired: false };
  await copyRange(t, range);
  const second = await compareRange(t, range);
  if (second.equal) return { range, rows: second.source.rowCount, checksum: second.source.checksum, repaired: true };
  const [sourceRows, targetRows] = await rowHashesBothSides(t, range);
  const diffs = differingIds(sourceRows, targetRows);
  const listed = diffs.map((d) => `${d.id} (${d.problem})`).join(', ');
  throw new VerificationFailed(
    `ids ${range.lo}..${range.hi} still differ after a re-copy: source ${second.source.rowCount} rows, target ${second.target.rowCount} rows; ` +
      `first ids at fault: ${listed || 'none found row by row (rows changed while comparing)'}. ` +
      'A target row with the same id but other content usually means the application wrote it there: raise idOffset so ' +
      "the target's AUTO_INCREMENT starts above every id the source can still receive.",
  );
}

/**
 * Both checksums of a range in one consistent snapshot, for two tables on one server (a table and
 * its shadow): triggers write the shadow in the same transaction as the table, so inside one
 * snapshot the two agree unless the copy is wrong.
 */
export async function snapshotCompare(conn: SqlConnection, t: CopyTables, range: KeyRange): Promise<{ source: RangeChecksum; target: RangeChecksum }> {
  await conn.execute('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
  try {
    const source = await checksumRange(conn, t.sourceTable, keyOf(t), t.hash.source, range);
    const target = await checksumRange(conn, t.targetTable, keyOf(t), t.hash.target, range);
    return { source, target };
  } finally {
    await conn.execute('COMMIT');
  }
}

/**
 * Runs an `INSERT IGNORE` and fails with the first warning it raised, unless that warning only
 * says a column has no default (an added NOT NULL column takes its implicit default, as a plain
 * ALTER gives the rows it already has). So a row the table refuses, a value cut short or changed,
 * is an error here with the database's own words, while the insert itself never stops half-way.
 */
export async function insertRefusing(conn: SqlConnection, sql: string, params: readonly unknown[]): Promise<number> {
  const { affectedRows } = await conn.execute(sql, params);
  const warnings = await conn.query('SHOW WARNINGS');
  const refused = warnings.find((w) => str(w, 'Code') !== String(ERRNO.NO_DEFAULT));
  if (refused) throw new DatabaseError(`${str(refused, 'Message')} (error ${str(refused, 'Code')})`, { errno: Number(str(refused, 'Code')) });
  return affectedRows;
}

/**
 * Makes a range of the target equal the source's, both on one server, in one transaction: the
 * source's rows of the range are share-locked first, in primary key order (so no write to them
 * can land between the steps, and no lock on the target is held while waiting for one on the
 * source), then the target's, and only the rows that differ are written: rows the target lacks or
 * holds otherwise are written again from the source, strictly, and rows the source no longer has
 * are deleted. The rows go in as `INSERT … VALUES`, never `INSERT … SELECT`: under
 * innodb_autoinc_lock_mode 1 an `INSERT … SELECT` holds the target's AUTO-INC lock while it waits
 * for a row lock (a unique key's next entry an application's transaction holds), the
 * application's next insert (its trigger's) waits for that AUTO-INC lock, and InnoDB ends the
 * cycle by failing the application's write, the one with fewer rows changed. It gives way to the
 * application's locks (see lockingRange). A row the target refuses (a duplicate on a unique key the
 * source does not have, a value its column cannot hold) fails the repair with the database's
 * reason, and the transaction is rolled back: nothing is deleted. `also` runs inside the same
 * transaction (inside each piece's, when a row locked by another transaction splits the range:
 * see lockingRange). With `writeBack` false only the target's rows that differ or that the source
 * lacks are deleted (a first step where rows of several ranges hold each other's unique values).
 */
export async function repairRange(conn: SqlConnection, t: CopyTables, range: KeyRange, also?: () => Promise<void>, { writeBack = true }: { writeBack?: boolean } = {}): Promise<void> {
  const key = keyOf(t);
  const source = `${qualified(t.sourceTable)} FORCE INDEX (${quoteIdent(t.keyIndex)})`;
  const target = t.targetKeyIndex ? `${qualified(t.targetTable)} FORCE INDEX (${quoteIdent(t.targetKeyIndex)})` : qualified(t.targetTable);
  try {
    await lockingRange(conn, range, async (tx, r, wait) => {
      const inSource = await rowHashes(tx, source, key, t.hash.source, r, ` LOCK IN SHARE MODE${wait}`);
      // the target's rows locked too, never waited for (see lockingRange): a trigger of the application's write may hold one
      const inTarget = await rowHashes(tx, target, key, t.hash.target, r, ` FOR UPDATE${wait}`);
      const diffs = differingIds(inSource, inTarget, Number.MAX_SAFE_INTEGER);
      const out = diffs.filter((d) => d.problem !== 'missing in target').map((d) => d.id);
      const back = diffs.filter((d) => d.problem !== 'extra in target').map((d) => d.id);
      // one row at a time, by its whole key: a unique lookup, which touches no row but its own whatever the statistics
      for (const id of out) {
        const it = key.equals(id);
        await tx.execute(`DELETE FROM ${qualified(t.targetTable)} WHERE ${it.sql}`, it.params);
      }
      if (writeBack) await writeFromSource(tx, t, back);
      await also?.();
      return 0;
    }, { stopping: t.stopping, key, table: t.sourceTable });
  } catch (err) {
    if (!(err instanceof DatabaseError)) throw err;
    throw new VerificationFailed(
      `${key.isInteger ? 'ids' : `keys (${key.names})`} ${key.describe(range)} of ${t.sourceTable.table} cannot be written to ${t.targetTable.table}: ${err.message.replace(/^[^:]*: statement failed: /, '')}. ` +
        'The same ALTER run directly on this data would fail too. Nothing was deleted; fix those rows (or the ALTER) and run again.',
      { cause: err },
    );
  }
}

/**
 * repairRange for a set of keys, in one transaction: the source's rows of the keys share-locked,
 * then the target's, both ` NOWAIT` through each table's index on the key, and only the rows that
 * differ written. Null, with nothing changed, when another transaction holds one of the rows or the
 * target refuses one: the caller then repairs them one key at a time (repairRange gives way, and
 * names a refused row). Otherwise the rows it wrote or deleted.
 */
export async function repairKeys(conn: SqlConnection, t: CopyTables, keys: readonly KeyValue[]): Promise<number | null> {
  if (keys.length === 0) return 0;
  const key = keyOf(t);
  const source = `${qualified(t.sourceTable)} FORCE INDEX (${quoteIdent(t.keyIndex)})`;
  const target = t.targetKeyIndex ? `${qualified(t.targetTable)} FORCE INDEX (${quoteIdent(t.targetKeyIndex)})` : qualified(t.targetTable);
  const where = key.oneOf(keys);
  const hashes = async (tx: SqlConnection, from: string, columns: readonly HashColumn[], lock: string) =>
    (await tx.query(`SELECT ${key.select()}, ${rowHashExpr(columns)} AS hash FROM ${from} WHERE ${where.sql} ORDER BY ${key.orderBy()}${lock}`, where.params)).map((r) => ({ id: key.fromRow(r), hash: str(r, 'hash')! }));
  try {
    return await conn.transaction(async (tx) => {
      const inSource = await hashes(tx, source, t.hash.source, ' LOCK IN SHARE MODE NOWAIT');
      const inTarget = await hashes(tx, target, t.hash.target, ' FOR UPDATE NOWAIT');
      const diffs = differingIds(inSource, inTarget, Number.MAX_SAFE_INTEGER);
      const out = diffs.filter((d) => d.problem !== 'missing in target').map((d) => d.id);
      for (const id of out) {
        const it = key.equals(id);
        await tx.execute(`DELETE FROM ${qualified(t.targetTable)} WHERE ${it.sql}`, it.params);
      }
      const back = diffs.filter((d) => d.problem !== 'extra in target').map((d) => d.id);
      await writeFromSource(tx, t, back);
      return new Set([...out, ...back]).size;
    });
  } catch (err) {
    const errno = (err as FerryError).errno;
    if (err instanceof DatabaseError || errno === ERRNO.LOCK_WAIT_TIMEOUT || errno === ERRNO.DEADLOCK) return null;
    throw err;
  }
}

/**
 * Writes the source's rows of these keys to the target, both on one server, as `INSERT … VALUES`
 * (see repairRange), strictly (see insertRefusing): the keys must not be in the target. Reads them
 * with share locks, so inside a transaction none changes before it commits.
 */
export async function writeFromSource(conn: SqlConnection, t: CopyTables, keys: readonly KeyValue[]): Promise<void> {
  const source = `${qualified(t.sourceTable)} FORCE INDEX (${quoteIdent(t.keyIndex)})`;
  for (let i = 0; i < keys.length; i += IDS_PER_STATEMENT) {
    const these = keyOf(t).oneOf(keys.slice(i, i + IDS_PER_STATEMENT));
    const rows = await conn.query(`SELECT ${readList(t)} FROM ${source} WHERE ${these.sql} LOCK IN SHARE MODE`, these.params);
    await insertRows({ ...t, target: conn }, rows, (sql, params) => insertRefusing(conn, sql, params));
  }
}

/**
 * Writes one row to the target, unless the target already holds that key, in a transaction of its
 * own: the target refusing it or changing a value (see insertRefusing) is an error, and then
 * nothing is written. Both tables on one server. Returns whether it was written.
 */
export async function insertMissing(t: CopyTables, id: KeyValue): Promise<boolean> {
  const key = keyOf(t);
  const mine = key.equals(id, 'o');
  const theirs = key.equals(id, 'n');
  const affectedRows = await t.target.transaction((tx) =>
    insertRefusing(
      tx,
      `INSERT IGNORE INTO ${qualified(t.targetTable)} (${t.targetColumns.map(quoteIdent).join(', ')}) SELECT ${t.columns.map((c) => `o.${quoteIdent(c)}`).join(', ')} FROM ${qualified(t.sourceTable)} o ` +
        `WHERE ${mine.sql} AND NOT EXISTS (SELECT 1 FROM ${qualified(t.targetTable)} n WHERE ${theirs.sql})`,
      [...mine.params, ...theirs.params],
    ),
  );
  return affectedRows > 0;
}
