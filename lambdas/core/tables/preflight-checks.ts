import { InvalidInput } from '../errors.ts';
import { ID_OFFSET_FLOOR } from '../id-offset.ts';
import { isPlainName, type TableRef } from '../identifiers.ts';
import { scalar, type SqlConnection } from '../ports/sql.ts';
import type { TableCopyInput } from '../table-copy-input.ts';
import { idBounds } from './copier.ts';
import { copyKeyColumns, copyKeys, databaseExists, describeUniqueKeys, inspectTable, integerKeys, integerRange, uniqueIndexOn, type ColumnInfo, type CopyKey, type TableInfo, type UniqueIndex } from './inspector.ts';
import { throttleQueryValue } from './probes.ts';

export async function requireTable(conn: SqlConnection, field: string, ref: TableRef, fix: { database: string; table: string }): Promise<TableInfo> {
  if (!(await databaseExists(conn, ref.database))) {
    throw new InvalidInput(`${field}.database`, `database ${ref.database} does not exist on connection "${conn.name}"; ${fix.database}`);
  }
  const info = await inspectTable(conn, ref);
  if (!info) throw new InvalidInput(`${field}.table`, `table ${ref.database}.${ref.table} does not exist on connection "${conn.name}"; ${fix.table}`);
  const odd = info.columns.filter((c) => !isPlainName(c.name));
  if (odd.length) {
    throw new InvalidInput(`${field}.table`, `column ${odd.map((c) => JSON.stringify(c.name)).join(', ')} of ${ref.table} has a name ferry does not write into SQL; rename it (letters, digits, _ or $, not starting with a digit)`);
  }
  return info;
}

/** The fix for a missing source (it is what is moved: the name must be wrong) and a missing target (it may simply not be made yet). */
const SOURCE_FIX = { database: 'fix the name (the source is the database being moved)', table: 'fix the name (the source is the table being moved)' };
const TARGET_FIX = { database: 'create it or fix the name', table: 'create it (the source\'s columns, a wider id) or fix the name' };

/**
 * Every check of table-copy's two tables that can refuse the input, in the order an operator would
 * fix them. Reads only: nothing is written until all of them pass.
 */
export async function checkCopyTables(input: TableCopyInput, source: SqlConnection, target: SqlConnection): Promise<{ sourceInfo: TableInfo; targetInfo: TableInfo; copyKey: CopyKey | null }> {
  const sourceInfo = await requireTable(source, 'source', input.source, SOURCE_FIX);
  const targetInfo = await requireTable(target, 'target', input.target, TARGET_FIX);
  const key = integerKeys(sourceInfo)[0];
  if (!key) return checkByKey(input, source, target, sourceInfo, targetInfo);
  if (!isPlainName(key.index)) {
    throw new InvalidInput('source.table', `unique key ${JSON.stringify(key.index)} of ${input.source.table}, by which ferry would read it, has a name ferry does not write into SQL; rename it (letters, digits, _ or $)`);
  }
  const idName = key.column;
  const sourceId = sourceInfo.columns.find((c) => c.name === idName)!;
  const sourceRange = integerRange(sourceId)!;
  if (uniqueIndexOn(targetInfo, idName) === null || !targetInfo.columns.some((c) => c.name === idName)) {
    throw new InvalidInput('target.table', `${input.target.table} must have a unique key on ${idName} alone, NOT NULL, like the source (its primary key, or a unique key); ${describeUniqueKeys(targetInfo)}`);
  }
  const targetColumns = requireColumns(input, sourceInfo, targetInfo);
  const targetRange = integerRange(targetColumns.get(idName)!);
  if (!targetRange) {
    throw new InvalidInput('target.table', `${idName} of ${input.target.table} is ${targetColumns.get(idName)!.columnType}, not an integer`);
  }
  const { min, max } = await idBounds(source, input.source, idName);
  const needMax = sourceRange.max + BigInt(input.idOffset ?? '0');
  const needMin = min === null ? 0n : BigInt(min);
  if (targetRange.max < needMax || targetRange.min > needMin) {
    throw new InvalidInput(
      'target.table',
      `${idName} of ${input.target.table} is ${targetColumns.get(idName)!.columnType}, too small for source ids of type ${sourceId.columnType}` +
        ` plus idOffset ${input.idOffset ?? '0'} (up to ${needMax}${needMin < 0n ? `, down to ${needMin}` : ''}); widen it, e.g. BIGINT UNSIGNED`,
    );
  }
  if (input.idOffset === undefined && (max === null ? 0n : BigInt(max)) + ID_OFFSET_FLOOR >= targetRange.max) {
    throw new InvalidInput(
      'idOffset',
      `${idName} of ${input.target.table} (${targetColumns.get(idName)!.columnType}) has no room above the source's ids for the default offset of ${ID_OFFSET_FLOOR} ids; ` +
        'widen it, or give idOffset explicitly ("0" when the old table receives no row once the copy flags are set)',
    );
  }
  await checkPrivileges(input, source, target);
  return { sourceInfo, targetInfo, copyKey: null };
}

/** The target must have every column the source copies. */
function requireColumns(input: TableCopyInput, sourceInfo: TableInfo, targetInfo: TableInfo): Map<string, ColumnInfo> {
  const targetColumns = new Map(targetInfo.columns.map((c) => [c.name, c]));
  const missing = sourceInfo.columns.filter((c) => !c.generated && (!targetColumns.has(c.name) || targetColumns.get(c.name)!.generated));
  if (missing.length > 0) {
    throw new InvalidInput('target.table', `${input.target.table} lacks source column(s) ${missing.map((c) => c.name).join(', ')}; add them to the target`);
  }
  return targetColumns;
}

/**
 * A source with no unique key on one integer column is copied by another unique key (see
 * key-spans.ts): its first whole, ordered one of types ferry reads keys of. The target must hold the
 * same key: a unique key on the same columns, each of the same type and collation (the order of
 * the rows and the equality of keys are the same on both sides). The source is emptied by deleting
 * delivered spans (no TRUNCATE, whose check under a write lock would read the whole table).
 */
async function checkByKey(input: TableCopyInput, source: SqlConnection, target: SqlConnection, sourceInfo: TableInfo, targetInfo: TableInfo): Promise<{ sourceInfo: TableInfo; targetInfo: TableInfo; copyKey: CopyKey }> {
  const key = copyKeys(sourceInfo)[0];
  if (!key) {
    throw new InvalidInput(
      'source.table',
      `${input.source.table} has no unique key ferry can copy by (${describeUniqueKeys(sourceInfo)}); ferry copies a table by a unique key whose columns are all NOT NULL, ` +
        'of integer, text, binary, ENUM or date and time types, indexed whole in a B-tree (not a prefix, a hash index or a descending part)',
    );
  }
  if (!isPlainName(key.index)) {
    throw new InvalidInput('source.table', `unique key ${JSON.stringify(key.index)} of ${input.source.table}, by which ferry would read it, has a name ferry does not write into SQL; rename it (letters, digits, _ or $)`);
  }
  const columns = copyKeyColumns(key);
  const named = `key (${columns.join(', ')})`;
  if (input.cleanup.mode === 'truncate') {
    throw new InvalidInput('cleanup.mode', `"truncate" is for tables copied by one integer id, and ${input.source.table} is copied by its ${named}; use "trickle-delete" (it deletes only delivered rows) or "none"`);
  }
  const targetColumns = requireColumns(input, sourceInfo, targetInfo);
  const same = (k: UniqueIndex) => k.whole && k.ordered && k.columns.length === columns.length && k.columns.every((c, i) => c.toLowerCase() === columns[i]!.toLowerCase());
  if (!targetInfo.uniqueIndexes.some(same)) {
    throw new InvalidInput('target.table', `${input.target.table} must have a unique key on (${columns.join(', ')}), in that order, like the source's ${key.index}; ${describeUniqueKeys(targetInfo)}`);
  }
  for (const name of columns) {
    const s = sourceInfo.columns.find((c) => c.name === name)!;
    const t = targetColumns.get(name)!;
    if (t.nullable || s.columnType !== t.columnType || s.collation !== t.collation) {
      const shown = (c: ColumnInfo) => `${c.columnType}${c.collation ? ` COLLATE ${c.collation}` : ''}${c.nullable ? ' NULL' : ' NOT NULL'}`;
      throw new InvalidInput(
        'target.table',
        `key column ${name} of ${input.target.table} is ${shown(t)}, and the source's is ${shown(s)}: the ${named} must be the same on both sides (same type and collation, NOT NULL), so both order and compare its values alike; make it ${shown(s)}`,
      );
    }
  }
  await checkPrivileges(input, source, target);
  return { sourceInfo, targetInfo, copyKey: key };
}

/** The privileges the cleanup needs on the source, and those ferry needs on the target. */
async function checkPrivileges(input: TableCopyInput, source: SqlConnection, target: SqlConnection): Promise<void> {
  const cleanupNeeds = input.cleanup.mode === 'trickle-delete' ? 'DELETE' : input.cleanup.mode === 'truncate' ? 'DROP' : null;
  if (cleanupNeeds && (await lacksPrivilege(source, input.source, cleanupNeeds))) {
    throw new InvalidInput(
      'cleanup.mode',
      `"${source.name}"'s user may not ${cleanupNeeds} on ${input.source.database}.${input.source.table}, which cleanup "${input.cleanup.mode}" does after the cut-over: ` +
        `GRANT ${cleanupNeeds} ON \`${input.source.database}\`.\`${input.source.table}\` TO ferry's user, or choose cleanup "none"`,
    );
  }
  for (const privilege of ['INSERT', 'UPDATE', 'DELETE', 'CREATE', 'ALTER']) {
    if (await lacksPrivilege(target, input.target, privilege)) {
      throw new InvalidInput('target.table', `"${target.name}"'s user may not ${privilege} on ${input.target.database}.${input.target.table} (ferry writes the table, and its checkpoint and ledger beside it): GRANT ${privilege} ON \`${input.target.database}\`.* TO ferry's user`);
    }
  }
}

/**
 * Whether the server says the connection's user surely lacks a privilege on a table: granted
 * neither globally, nor on its database, nor on the table. False when it has it, or when it cannot
 * tell (a role is in use, or the server does not answer the question).
 */
export async function lacksPrivilege(conn: SqlConnection, ref: TableRef, privilege: string): Promise<boolean> {
  try {
    // Privileges through a role (nested ones, default ones) are not all in information_schema: then it cannot tell.
    const role = await scalar(conn, 'SELECT CURRENT_ROLE()');
    if (role !== null && role !== 'NONE') return false;
    const rows = await conn.query(
      `SELECT 1 FROM (
         SELECT GRANTEE, PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES
         UNION ALL SELECT GRANTEE, PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES WHERE TABLE_SCHEMA = ?
         UNION ALL SELECT GRANTEE, PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?
       ) p
       WHERE p.PRIVILEGE_TYPE = ? AND p.GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''') LIMIT 1`,
      [ref.database, ref.database, ref.table, privilege],
    );
    return rows.length === 0;
  } catch {
    return false;
  }
}

/**
 * The operator's throttle query must run where it will be asked, and return a number. Its failure
 * says only its class (syntax, no permission, timed out, …): the database's text can print rows.
 */
export async function checkThrottleQuery(conn: SqlConnection, query: string | undefined): Promise<void> {
  if (!query) return;
  try {
    await throttleQueryValue(conn, query);
  } catch (err) {
    throw new InvalidInput('throttle.query', `${(err as Error).message}: fix the query (try it as the user ferry connects as)`);
  }
}
