import { addId, compareIds, minId, type Id, type IdRange } from './ids.ts';

export interface ChunkSettings {
  /** How long one chunk should take. */
  readonly targetMillis: number;
  readonly minRows: number;
  readonly maxRows: number;
}

export const DEFAULT_CHUNK: ChunkSettings = { targetMillis: 500, minRows: 100, maxRows: 100_000 };

/** Growth per step is capped so one fast chunk over a gap cannot make the next one huge. */
export const MAX_GROWTH = 1.5;
/** A chunk that took this many times its target is an outlier: the next one is cut at once. */
export const OUTLIER_FACTOR = 2;

function clamp(rows: number, s: ChunkSettings): number {
  return Math.max(s.minRows, Math.min(s.maxRows, Math.round(rows)));
}

/**
 * Size of the next chunk from how long the last one took. Sized by time, not rows: a row of
 * this table can be 50 bytes or 50 KiB, and the server can be idle or busy.
 *
 * - on target: keep the size
 * - faster than target: grow toward the size that would have hit the target, at most ×1.5
 * - slower: shrink in proportion; after an outlier (≥ 2× target) the cut applies in full at once
 */
export function nextChunkRows(lastRows: number, elapsedMillis: number, s: ChunkSettings): number {
  const elapsed = Math.max(elapsedMillis, 1);
  const ideal = (lastRows * s.targetMillis) / elapsed;
  if (elapsed >= s.targetMillis * OUTLIER_FACTOR) return clamp(ideal, s);
  if (ideal > lastRows) return clamp(Math.min(ideal, lastRows * MAX_GROWTH), s);
  // A little slower than target: move halfway, so timing noise does not make the size jitter.
  return clamp((lastRows + ideal) / 2, s);
}

/** The first chunk of a run: small enough to be safe on a busy server, then grown by timing. */
export function initialChunkRows(s: ChunkSettings): number {
  return clamp(Math.min(1000, s.maxRows), s);
}

/**
 * The id range of the next chunk. `firstExisting` is the smallest id present after the cursor
 * (found with an index probe), so a gap in the ids never produces an empty chunk.
 * Returns null when nothing is left at or below `upTo`.
 */
export function planChunk(firstExisting: Id | null, rows: number, upTo: Id): IdRange | null {
  if (firstExisting === null || compareIds(firstExisting, upTo) > 0) return null;
  return { lo: firstExisting, hi: minId(addId(firstExisting, rows - 1), upTo) };
}
