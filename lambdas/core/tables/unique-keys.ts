import type { ColumnInfo, TableInfo, UniqueKey } from './inspector.ts';
import { integerRange, uniqueIndexOnAll } from './inspector.ts';
import type { ColumnMapping } from './shadow.ts';

/**
 * The unique keys of the altered table that the table does not already enforce: a key is implied
 * when some unique key of the table covers no more than its columns, each unchanged in type and
 * collation and not cut to a shorter prefix. Any other can refuse rows the table accepts.
 */
export function newUniqueKeys(table: TableInfo, altered: TableInfo, mapping: ColumnMapping, keyColumns: string | readonly string[]): UniqueKey[] {
  // The key ferry copies by is the same one, copied one for one (an integer's range checked apart).
  const kept = uniqueIndexOnAll(altered, typeof keyColumns === 'string' ? [keyColumns] : keyColumns);
  const alteredCol = (name: string) => altered.columns.find((c) => c.name.toLowerCase() === name.toLowerCase());
  const implies = (e: UniqueKey, k: UniqueKey) =>
    e.parts.every((pe) => {
      const i = mapping.source.findIndex((c) => c.toLowerCase() === pe.column.toLowerCase());
      if (i < 0) return false;
      const there = mapping.target[i]!.toLowerCase();
      const pk = k.parts.find((p) => p.column.toLowerCase() === there);
      const before = table.columns.find((c) => c.name.toLowerCase() === pe.column.toLowerCase());
      const after = alteredCol(there);
      if (!pk || !before || !after) return false;
      const longEnough = pe.prefix === null ? pk.prefix === null : pk.prefix === null || pk.prefix >= pe.prefix;
      return longEnough && before.collation === after.collation && notNarrower(before, after);
    });
  return altered.uniqueIndexes.filter((k) => k.name !== kept && !table.uniqueIndexes.some((e) => implies(e, k)));
}

/** Whether every value of the column's old type is kept as it is by the new one: the same type, a wider integer, or a longer string. */
function notNarrower(before: ColumnInfo, after: ColumnInfo): boolean {
  if (before.columnType === after.columnType) return true;
  const [a, b] = [integerRange(before), integerRange(after)];
  if (a && b) return b.min <= a.min && b.max >= a.max;
  const length = (c: ColumnInfo) => /^(var)?char\((\d+)\)$/i.exec(c.columnType);
  const [la, lb] = [length(before), length(after)];
  return la !== null && lb !== null && Number(lb[2]) >= Number(la[2]);
}
