import type { SqlConnection } from '../ports/sql.ts';
import { str } from '../ports/sql.ts';
import { differingIds, rangeChecksumSql, rowHashesSql, sameChecksum, type RangeChecksum } from '../checksum.ts';
import { VerificationFailed } from '../errors.ts';
import type { IdRange } from '../ids.ts';
import { qualified, type TableRef } from '../identifiers.ts';
import { copyRange, type CopyTables } from './copier.ts';

export async function checksumRange(conn: SqlConnection, table: TableRef, idColumn: string, columns: readonly string[], range: IdRange): Promise<RangeChecksum> {
  const rows = await conn.query(rangeChecksumSql(qualified(table), idColumn, columns), [range.lo, range.hi]);
  const r = rows[0] ?? {};
  return { rowCount: str(r, 'row_count') ?? '0', checksum: str(r, 'checksum') ?? '0' };
}

export interface RangeVerdict {
  readonly range: IdRange;
  readonly rows: string;
  /** True when the first comparison differed and a re-copy made the range equal. */
  readonly repaired: boolean;
}

async function compare(t: CopyTables, range: IdRange): Promise<{ equal: boolean; source: RangeChecksum; target: RangeChecksum }> {
  const [source, target] = await Promise.all([
    checksumRange(t.source, t.sourceTable, t.idColumn, t.columns, range),
    checksumRange(t.target, t.targetTable, t.idColumn, t.columns, range),
  ]);
  return { equal: sameChecksum(source, target), source, target };
}

/**
 * Compares a range by count and checksum; a range that differs is copied again and compared
 * once more. A range still wrong after that fails with the ids at fault: a row in the target
 * with the same id and other content is never overwritten, because it may be the application's.
 */
export async function verifyRange(t: CopyTables, range: IdRange): Promise<RangeVerdict> {
  const first = await compare(t, range);
  if (first.equal) return { range, rows: first.source.rowCount, repaired: false };
  await copyRange(t, range);
  const second = await compare(t, range);
  if (second.equal) return { range, rows: second.source.rowCount, repaired: true };
  const [sourceRows, targetRows] = await Promise.all([
    t.source.query(rowHashesSql(qualified(t.sourceTable), t.idColumn, t.columns), [range.lo, range.hi]),
    t.target.query(rowHashesSql(qualified(t.targetTable), t.idColumn, t.columns), [range.lo, range.hi]),
  ]);
  const toPairs = (rows: typeof sourceRows) => rows.map((r) => ({ id: str(r, 'id')!, hash: str(r, 'hash')! }));
  const diffs = differingIds(toPairs(sourceRows), toPairs(targetRows));
  const listed = diffs.map((d) => `${d.id} (${d.problem})`).join(', ');
  throw new VerificationFailed(
    `ids ${range.lo}..${range.hi} still differ after a re-copy: source ${second.source.rowCount} rows, target ${second.target.rowCount} rows; ` +
      `first ids at fault: ${listed || 'none found row by row (rows changed while comparing)'}. ` +
      'A target row with the same id but other content usually means the application wrote it there: raise idOffset so ' +
      "the target's AUTO_INCREMENT starts above every id the source can still receive.",
  );
}
