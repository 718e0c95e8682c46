/**
 * The default idOffset: room above the source's highest id for the rows the old table still
 * receives until every application server reads the new flags, and for rows committed late. A day
 * of the source's insert rate, measured while the migration starts, and never less than a million
 * ids (the Open edX history table receives 20,000–80,000 rows an hour).
 */
export const ID_OFFSET_FLOOR = 1_000_000n;
export const ID_OFFSET_DAYS = 1;
/** How long the insert rate is measured for before the offset is chosen. */
export const RATE_SAMPLE_SECONDS = 10;

export interface OffsetChoice {
  readonly offset: bigint;
  readonly insertsPerHour: bigint;
}

/** The offset for ids that grew by `grown` over `elapsedMillis`. */
export function chooseIdOffset(grown: bigint, elapsedMillis: number): OffsetChoice {
  const millis = BigInt(Math.max(1, Math.round(elapsedMillis)));
  const perHour = (grown * 3_600_000n) / millis;
  const aDay = (grown * BigInt(ID_OFFSET_DAYS) * 86_400_000n + millis - 1n) / millis;
  return { offset: aDay > ID_OFFSET_FLOOR ? aDay : ID_OFFSET_FLOOR, insertsPerHour: perHour };
}
