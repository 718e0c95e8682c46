import { createHash, randomBytes } from 'node:crypto';
import { InvalidInput, type FerryError } from '../errors.ts';
import { isPlainName, qualified, quoteIdent, type TableRef } from '../identifiers.ts';
import type { OnlineAlterInput } from '../online-alter-input.ts';
import { str, type SqlConnection } from '../ports/sql.ts';
import { insertSelectNotLocking } from './copier.ts';
import { KeyShape } from '../keys.ts';
import {
  constraintNames, copiedColumns, diskFreeBytes, foreignKeysOf, foreignKeysPointingAt, inspectTable, integerRange, tableBytes,
  copyKeyColumns, copyKeys, describeUniqueKeys, keyShapeOf, uniqueIndexOnAll, type ColumnInfo, type CopyKey, type TableInfo, type UniqueKey,
} from './inspector.ts';
import { requireTable } from './preflight-checks.ts';
import { checkOwnTriggers, mayMoveOwnTriggers, ownTriggers, type OwnTrigger } from './own-triggers.ts';
import { buildAltered, captureNames, columnMapping, shadowConstraintName, shadowNames, type ColumnMapping } from './shadow.ts';
import { newUniqueKeys } from './unique-keys.ts';

/**
 * The key online-alter goes by: a key whose rows are one each in the table and in its altered
 * shape, so the ALTER may move the primary key as long as one stays. It is a whole unique index of
 * the altered table whose columns start with the columns of a whole unique index of the table
 * (the same index, kept, or a new primary key `(id, i)` over the table's `(id)`), every column
 * kept under its name and still compared the same way: an integer stays an integer (it may
 * widen), any other column keeps its type and collation. The table's own index is the one it is
 * read by. A key on one integer column is taken first (its ranges split by arithmetic), the
 * table's row key before others. Null when none is shared.
 */
export function sharedCopyKey(table: TableInfo, altered: TableInfo, mapping: ColumnMapping): CopyKey | null {
  const kept = (name: string) => {
    const i = mapping.source.findIndex((c) => c.toLowerCase() === name.toLowerCase());
    const before = table.columns.find((c) => c.name.toLowerCase() === name.toLowerCase());
    const after = altered.columns.find((c) => c.name.toLowerCase() === name.toLowerCase());
    // NOT NULL in both: a key column of the table's that is nullable (the columns a wider key adds) would let a row escape every range
    if (i < 0 || mapping.target[i]!.toLowerCase() !== name.toLowerCase() || !before || !after || before.nullable || after.nullable) return false;
    if (integerRange(before)) return integerRange(after) !== null;
    return before.columnType === after.columnType && before.collation === after.collation;
  };
  const lower = (cols: readonly string[]) => cols.map((c) => c.toLowerCase());
  const pairs = table.uniqueIndexes.filter((u) => u.whole && u.ordered && u.columns.every(kept)).flatMap((u) =>
    altered.uniqueIndexes
      .filter((v) => v.whole && v.ordered && v.columns.length >= u.columns.length && lower(v.columns.slice(0, u.columns.length)).join('\0') === lower(u.columns).join('\0') && v.columns.every(kept))
      .map((v) => ({
        column: u.columns[0]!,
        index: u.name,
        columns: v.columns.map((c) => table.columns.find((x) => x.name.toLowerCase() === c.toLowerCase())!.name),
        ...(v.columns.length > u.columns.length ? { orderedBy: u.columns.length } : {}),
      })),
  );
  const usable = pairs.filter((k) => keyShapeOf(table, k.columns) instanceof KeyShape);
  const single = usable.find((k) => k.columns.length === 1 && integerRange(table.columns.find((c) => c.name === k.columns[0])!) !== null);
  if (single) return { column: single.column, index: single.index };
  return usable[0] ?? null;
}

/** Rows of the table copied into the scratch table (the lowest and the highest ids) before the ALTER is tried on them. */
export const SAMPLE_ROWS = 1000;

/** Copies the table's SAMPLE_ROWS lowest and highest rows by the key's columns into a scratch table of its shape, locking none of them (see insertSelectNotLocking). */
export async function sampleInto(conn: SqlConnection, t: TableRef, scratch: TableRef, columns: readonly string[], keyColumns: string | readonly string[]): Promise<void> {
  const cols = columns.map(quoteIdent).join(', ');
  const by = typeof keyColumns === 'string' ? [keyColumns] : keyColumns;
  for (const order of ['ASC', 'DESC']) {
    await insertSelectNotLocking(conn, `INSERT IGNORE INTO ${qualified(scratch)} (${cols}) SELECT ${cols} FROM ${qualified(t)} ORDER BY ${by.map((c) => `${quoteIdent(c)} ${order}`).join(', ')} LIMIT ${SAMPLE_ROWS}`);
  }
}

/** The lowest and highest value of one integer column (not indexed alone, perhaps: one pass over the table). */
async function columnBounds(conn: SqlConnection, t: TableRef, column: string): Promise<{ min: string | null; max: string | null }> {
  const c = quoteIdent(column);
  const r = (await conn.query(`SELECT MIN(${c}) AS lo, MAX(${c}) AS hi FROM ${qualified(t)}`))[0] ?? {};
  return { min: str(r, 'lo'), max: str(r, 'hi') };
}

const SAFE_NAME = /^[A-Za-z0-9_]+$/;

/**
 * Existing rows that would clash on a new unique key: the first few groups of equal values (rows
 * with a NULL in the key never clash), read from the table through the column mapping. Null when
 * the key has a column the table does not have (an added one): the copy's verification sees those.
 */
export async function duplicatesFor(conn: SqlConnection, t: TableRef, key: UniqueKey, table: TableInfo, altered: TableInfo, mapping: ColumnMapping): Promise<string[] | null> {
  const parts: string[] = [];
  for (const p of key.parts) {
    const i = mapping.target.findIndex((c) => c.toLowerCase() === p.column.toLowerCase());
    if (i < 0) return null;
    const col = quoteIdent(mapping.source[i]!);
    const before = table.columns.find((c) => c.name.toLowerCase() === mapping.source[i]!.toLowerCase());
    const after = altered.columns.find((c) => c.name.toLowerCase() === p.column.toLowerCase());
    let expr = p.prefix === null ? col : `LEFT(${col}, ${Math.trunc(p.prefix)})`;
    if (after?.collation && after.collation !== before?.collation && SAFE_NAME.test(after.collation) && SAFE_NAME.test(after.charset ?? '')) {
      expr = `CONVERT(${expr} USING ${after.charset}) COLLATE ${after.collation}`;
    }
    parts.push(expr);
  }
  const rows = await conn.query(
    `SELECT CONCAT_WS(', ', ${parts.join(', ')}) AS v, COUNT(*) AS n FROM ${qualified(t)} WHERE ${parts.map((p) => `${p} IS NOT NULL`).join(' AND ')} GROUP BY ${parts.join(', ')} HAVING n > 1 LIMIT 3`,
  );
  return rows.map((r) => `(${str(r, 'v')}) × ${str(r, 'n')}`);
}

/** MySQL's and MariaDB's "you need SUPER (or log_bin_trust_function_creators) to create a trigger while the binary log is on". */
const BINLOG_TRIGGER_NEEDS_SUPER = 1419;

/**
 * Creates a trigger on the scratch table and drops it again, so the server itself says whether
 * ferry's user may make the triggers CreateShadow makes: with a binary log on, that takes SUPER or
 * `log_bin_trust_function_creators` (error 1419, as on RDS with its default parameter group), and
 * the TRIGGER privilege always.
 */
async function mayCreateTriggers(conn: SqlConnection, scratch: TableRef): Promise<void> {
  const trigger = qualified({ database: scratch.database, table: `${scratch.table}_t` });
  try {
    await conn.execute(`CREATE TRIGGER ${trigger} AFTER INSERT ON ${qualified(scratch)} FOR EACH ROW SET @ferry_check = 1`);
  } catch (err) {
    const e = err as FerryError;
    const words = e.message.replace(/^[^:]*: statement failed: /, '');
    if (e.errno === BINLOG_TRIGGER_NEEDS_SUPER) {
      throw new InvalidInput(
        'table.connection',
        `the server writes a binary log, and "${conn.name}"'s user may not create the triggers online-alter needs there (${words}). ` +
          'On RDS or Aurora set log_bin_trust_function_creators = 1 in the DB parameter group; elsewhere SET GLOBAL log_bin_trust_function_creators = 1 (and in the server\'s configuration), or GRANT SUPER ON *.* TO ferry\'s user',
      );
    }
    throw new InvalidInput('table.connection', `"${conn.name}"'s user may not create the triggers online-alter needs on ${scratch.database} (${words}): GRANT TRIGGER ON \`${scratch.database}\`.* TO ferry's user`);
  }
  await conn.execute(`DROP TRIGGER IF EXISTS ${trigger}`);
}

/**
 * Tries the ALTER on a scratch copy of the table holding a sample of its real rows (foreign keys
 * included), so the database judges the clause and the data together, strictly, and always drops
 * the scratch table. Hands the altered shape to `inspect`.
 */
async function onScratch<T>(
  conn: SqlConnection,
  input: OnlineAlterInput,
  columns: readonly string[],
  idName: readonly string[],
  own: readonly OwnTrigger[],
  inspect: (altered: TableInfo) => Promise<T>,
): Promise<T> {
  const t = input.table;
  // A name of its own each time: never a table someone else keeps, never another check's running at once.
  const scratch = { database: t.database, table: `_ferry_chk_${randomBytes(8).toString('hex')}` };
  const tag = (name: string) => `_ferry_chk_${createHash('sha1').update(`${scratch.table}\0${name}`).digest('hex').slice(0, 12)}`;
  const sample = (c: SqlConnection) => sampleInto(c, t, scratch, columns, idName);
  await conn.execute(`DROP TABLE IF EXISTS ${qualified(scratch)}`);
  try {
    try {
      await buildAltered(conn, t, scratch, input.alter, tag, sample);
    } catch (err) {
      throw new InvalidInput('alter', `the database refused it on a copy of up to ${2 * SAMPLE_ROWS} of the table's rows: ${(err as Error).message.replace(/^[^:]*: statement failed: /, '')}; fix the clause (or those rows)`);
    }
    await mayCreateTriggers(conn, scratch);
    await mayMoveOwnTriggers(conn, own, scratch);
    return await inspect((await inspectTable(conn, scratch))!);
  } finally {
    await conn.execute(`DROP TABLE IF EXISTS ${qualified(scratch)}`);
  }
}

/**
 * Every check of online-alter's table and clause that can refuse the input, before anything
 * lasting is written: the ALTER is tried on a scratch copy with real rows, which is dropped again.
 */
export async function checkAlterTable(conn: SqlConnection, input: OnlineAlterInput): Promise<{ addedUniqueKeys: string[]; copyKey: CopyKey }> {
  const t = input.table;
  const info = await requireTable(conn, 'table', t, { database: 'fix the name', table: 'fix the name' });
  const candidates = copyKeys(info);
  if (candidates.length === 0) {
    throw new InvalidInput(
      'table.table',
      `${t.table} has no unique key ferry can copy by (${describeUniqueKeys(info)}): it needs one whose columns are all NOT NULL, indexed whole, and integers, text, binary strings, enums, dates or times; add one first`,
    );
  }
  const idName = copyKeyColumns(candidates[0]!);
  const fks = await foreignKeysPointingAt(conn, t);
  if (fks.length) {
    const listed = fks.map((fk) => `${fk.name} on ${fk.table.database}.${fk.table.table}(${fk.column}) — drop it first: ALTER TABLE \`${fk.table.database}\`.\`${fk.table.table}\` DROP FOREIGN KEY \`${fk.name}\``);
    throw new InvalidInput('table.table', `foreign keys point at ${t.table}, and would stay on the old table after the swap: ${listed.join('; ')}`);
  }
  const own = await ownTriggers(conn, t);
  checkOwnTriggers(own);
  const { shadow, old } = shadowNames(t);
  for (const leftover of [shadow, old, captureNames(input.migrationId, t).log]) {
    if (await inspectTable(conn, leftover)) {
      throw new InvalidInput('table.table', `${t.database}.${leftover.table} already exists and no checkpoint of "${input.migrationId}" explains it; drop or rename it first (or: npx ferry abandon ${input.migrationId})`);
    }
  }
  const taken = await constraintNames(conn, t.database);
  for (const fk of await foreignKeysOf(conn, t)) {
    const name = shadowConstraintName(fk.name);
    if (name.length > 64 || taken.has(name.toLowerCase())) {
      throw new InvalidInput(
        'table.table',
        `foreign key ${fk.name} of ${t.table} is recreated on the altered table as ${name}, which ${name.length > 64 ? 'is longer than 64 characters' : 'another constraint in the database already uses'}; rename the foreign key first`,
      );
    }
  }
  const checked = await onScratch(conn, input, copiedColumns(info), idName, own, async (altered) => {
    const mapping = columnMapping(info, altered, input.alter);
    const copyKey = sharedCopyKey(info, altered, mapping);
    if (!copyKey) {
      throw new InvalidInput(
        'alter',
        `must leave a unique key that starts with the columns of one of ${t.table}'s (${candidates.map((k) => `${k.index} (${copyKeyColumns(k).join(', ')})`).join(', ')}), NOT NULL, not renamed, their types and collations kept: ferry copies the table by it. ` +
          `The altered table's unique keys: ${altered.uniqueIndexes.map((k) => `${k.name} (${k.columns.join(', ')})`).join(', ') || 'none'}; add one, e.g. ADD UNIQUE KEY (${idName.join(', ')})`,
      );
    }
    for (const [name, where] of [[copyKey.index, t.table], [uniqueIndexOnAll(altered, copyKeyColumns(copyKey))!, 'the altered table']] as const) {
      if (!isPlainName(name)) {
        throw new InvalidInput(where === t.table ? 'table.table' : 'alter', `unique key ${JSON.stringify(name)} of ${where}, by which ferry copies, has a name ferry does not write into SQL; rename it (letters, digits, _ or $)`);
      }
    }
    for (const column of copyKeyColumns(copyKey)) {
      const before = integerRange(info.columns.find((c) => c.name.toLowerCase() === column.toLowerCase())!);
      const after = integerRange(altered.columns.find((c) => c.name.toLowerCase() === column.toLowerCase())!);
      if (!before || !after || (after.min <= before.min && after.max >= before.max)) continue;
      const { min, max } = await columnBounds(conn, t, column);
      if (max !== null && (BigInt(max) > after.max || BigInt(min!) < after.min)) {
        throw new InvalidInput('alter', `leaves ${column} unable to hold the values the table has (${min}..${max})`);
      }
    }
    const added = newUniqueKeys(info, altered, mapping, copyKeyColumns(copyKey));
    if (added.length && !input.allowNewUniqueKeys) {
      const names = added.map((k) => `${k.name} (${k.parts.map((p) => p.column + (p.prefix ? `(${p.prefix})` : '')).join(', ')})`).join(', ');
      throw new InvalidInput(
        'alter',
        `adds or narrows unique key ${names}, which ${t.table} does not enforce: a row the application writes during the migration could be refused by the new table. ` +
          'Set "allowNewUniqueKeys": true to go on: ferry then checks the existing rows for duplicates now, never deletes a clashing row, and fails the migration before the cut-over if one appears',
      );
    }
    for (const key of added) {
      const dup = await duplicatesFor(conn, t, key, info, altered, mapping);
      if (dup?.length) throw new InvalidInput('alter', `unique key ${key.name} would be broken by rows already in ${t.table}: ${dup.join('; ')}; fix those rows first`);
    }
    return { copyKey, addedUniqueKeys: added.map((k) => `${k.name} (${k.parts.map((p) => p.column + (p.prefix ? `(${p.prefix})` : '')).join(', ')})`) };
  });
  const size = await tableBytes(conn, t);
  const free = await diskFreeBytes(conn);
  if (free !== null && size !== null && BigInt(free) < BigInt(size) * 2n) {
    throw new InvalidInput('table.table', `the server has ${free} bytes free and a second copy of ${t.table} needs about ${size} (twice that with its log); free space first`);
  }
  return checked;
}
