import { KeyShape, type KeyRange, type KeyValue } from '../keys.ts';
import { keyAt, keyBounds } from './copier.ts';
import type { HashColumn } from '../checksum.ts';
import { addId, type Id } from '../ids.ts';
import { qualified, quoteIdent, type TableRef } from '../identifiers.ts';
import { count, formatBytes, type PlanDeps, type PlanSample } from '../plan.ts';
import { scalar, str, type SqlConnection } from '../ports/sql.ts';
import { diskFreeBytes, estimatedRows } from './inspector.ts';
import { checksumRange } from './verifier.ts';

/** What `ferry plan` reads of a table that moves; every read is a SELECT. */

/** Tables up to this many rows (by the server's estimate) are counted exactly. */
export const EXACT_COUNT_UP_TO = 1_000_000n;

/** Rows of the source a plan reads, timed, to estimate how long the copy takes. */
export const SAMPLE_ROWS = 20_000;

/** The table's rows: counted when the estimate is small, else the server's estimate. */
export async function rowsOf(conn: SqlConnection, ref: TableRef): Promise<{ rows: string; exact: boolean }> {
  const estimate = await estimatedRows(conn, ref);
  if (BigInt(estimate) > EXACT_COUNT_UP_TO) return { rows: estimate, exact: false };
  return { rows: (await scalar(conn, `SELECT COUNT(*) FROM ${qualified(ref)}`)) ?? '0', exact: true };
}

export function rowsLine(what: string, r: { rows: string; exact: boolean }): string {
  return `${what}: ${r.exact ? count(r.rows) : `~${count(r.rows)} (the server's estimate; counted exactly up to ${count(EXACT_COUNT_UP_TO)} rows)`}`;
}

/** `ids 1 … 2,147,483,647: 4,002 rows fill 0.0002% of the span` */
export function idsLine(min: Id | null, max: Id | null, rows: string): string {
  if (min === null || max === null) return 'ids: none (the table is empty)';
  const span = BigInt(max) - BigInt(min) + 1n;
  const fill = span === 0n ? 0 : Number((BigInt(rows) * 1_000_000n) / span) / 10_000;
  const gaps = fill < 50 ? ': mostly gaps, which the chunks skip (each chunk starts at the next existing id)' : '';
  return `ids ${min} … ${max}: ${count(rows)} rows fill ${fill}% of the span${gaps}`;
}

/** The range a plan samples, from the table's lowest key `min`: SAMPLE_ROWS ids of an integer key, SAMPLE_ROWS rows of any other. */
async function sampleRange(conn: SqlConnection, ref: TableRef, key: KeyShape, min: KeyValue): Promise<KeyRange> {
  if (key.isInteger) return { lo: min, hi: addId(min, SAMPLE_ROWS - 1) };
  const from: KeyRange = { lo: min, hi: (await keyBounds(conn, ref, key)).max ?? min };
  return { ...from, hi: (await keyAt(conn, ref, key, from, SAMPLE_ROWS - 1)) ?? from.hi };
}

/**
 * Reads (and checksums, as verification will) up to SAMPLE_ROWS ids of the source from its lowest
 * id, timed. Null for an empty table.
 */
export async function timedSample(conn: SqlConnection, ref: TableRef, key: KeyShape | string, columns: readonly HashColumn[], min: Id | null, now: () => number): Promise<PlanSample | null> {
  if (min === null) return null;
  const started = now();
  const r = await checksumRange(conn, ref, key, columns, await sampleRange(conn, ref, KeyShape.of(key), min));
  return { unit: 'rows', count: Number(r.rowCount), millis: now() - started };
}

/**
 * Bytes the table's rows take, at least: the larger of what information_schema reports (InnoDB
 * refreshes it lazily, so a table just filled may show far less) and the column bytes of the rows
 * the sample read, scaled to every row.
 */
export async function tableBytesAtLeast(conn: SqlConnection, ref: TableRef, key: KeyShape | string, columns: readonly string[], min: Id | null, rows: string, reported: string | null): Promise<string | null> {
  if (min === null) return reported;
  const lengths = columns.map((c) => `COALESCE(LENGTH(${quoteIdent(c)}), 0)`).join(' + ');
  const where = KeyShape.of(key).within(await sampleRange(conn, ref, KeyShape.of(key), min));
  const r = (await conn.query(`SELECT COUNT(*) AS n, SUM(${lengths}) AS bytes FROM ${qualified(ref)} WHERE ${where.sql}`, where.params))[0] ?? {};
  const n = BigInt(str(r, 'n') ?? '0');
  if (n === 0n) return reported;
  const sampled = (BigInt(str(r, 'bytes') ?? '0') * BigInt(rows)) / n;
  return reported !== null && BigInt(reported) > sampled ? reported : sampled.toString();
}

/** Free bytes where the server keeps its data: its DISKS plugin, else what the platform can tell. */
export async function freeSpace(conn: SqlConnection, deps: Pick<PlanDeps, 'freeDiskBytes'>): Promise<{ bytes: string; where: string } | null> {
  const plugin = await diskFreeBytes(conn);
  if (plugin !== null) return { bytes: plugin, where: `information_schema.DISKS on "${conn.name}"` };
  return deps.freeDiskBytes(conn);
}

/** Whether the server writes a binary log (the copy's rows go there too). */
export async function binlogOn(conn: SqlConnection): Promise<boolean> {
  return (await scalar(conn, 'SELECT @@log_bin').catch(() => '0')) === '1';
}

export function diskNote(free: { bytes: string; where: string } | null, server: string, binlog: boolean, size: string | null): string {
  const logged = binlog ? `; the server writes a binary log, so the copy's rows take about ${formatBytes(size)} more there until it is purged` : '';
  if (free) return `free from ${free.where}${logged}`;
  return `free space on "${server}" is unknown here (MariaDB tells it only with the DISKS plugin; on RDS read the instance's FreeStorageSpace in CloudWatch)${logged}`;
}
