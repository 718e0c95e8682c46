import { addId, compareIds, minId, type Id, type IdRange } from './ids.ts';

/**
 * How chunks are sized. A chunk is a span of ids, not a count of rows: where ids are dense the two
 * are the same, across a gap the span holds fewer rows (and the next-existing-id probe skips it).
 */
export interface ChunkSettings {
  /** How long one chunk should take. */
  readonly targetMillis: number;
  readonly minSpan: number;
  readonly maxSpan: number;
}

/** The input's `chunk` fields: `minRows` and `maxRows` bound a chunk's id span. */
export interface ChunkInput {
  readonly targetMillis: number;
  readonly minRows: number;
  readonly maxRows: number;
}

export const DEFAULT_CHUNK: ChunkInput = { targetMillis: 500, minRows: 100, maxRows: 100_000 };

export function chunkSettings(c: ChunkInput): ChunkSettings {
  return { targetMillis: c.targetMillis, minSpan: c.minRows, maxSpan: c.maxRows };
}

/** Growth per step is capped so one fast chunk over a gap cannot make the next one huge. */
export const MAX_GROWTH = 1.5;
/** A chunk that took this many times its target is an outlier: the next one is cut at once. */
export const OUTLIER_FACTOR = 2;

function clamp(span: number, s: ChunkSettings): number {
  return Math.max(s.minSpan, Math.min(s.maxSpan, Math.round(span)));
}

/**
 * Id span of the next chunk from how long the last one took. Sized by time, not rows: a row of
 * this table can be 50 bytes or 50 KiB, and the server can be idle or busy.
 *
 * - on target: keep the span
 * - faster than target: grow toward the span that would have hit the target, at most ×1.5
 * - slower: shrink in proportion; after an outlier (≥ 2× target) the cut applies in full at once
 */
export function nextChunkSpan(lastSpan: number, elapsedMillis: number, s: ChunkSettings): number {
  const elapsed = Math.max(elapsedMillis, 1);
  const ideal = (lastSpan * s.targetMillis) / elapsed;
  if (elapsed >= s.targetMillis * OUTLIER_FACTOR) return clamp(ideal, s);
  if (ideal > lastSpan) return clamp(Math.min(ideal, lastSpan * MAX_GROWTH), s);
  // A little slower than target: move halfway, so timing noise does not make the span jitter.
  return clamp((lastSpan + ideal) / 2, s);
}

/** The first chunk of a run: small enough to be safe on a busy server, then grown by timing. */
export function initialChunkSpan(s: ChunkSettings): number {
  return clamp(Math.min(1000, s.maxSpan), s);
}

/**
 * The id range of the next chunk. `firstExisting` is the smallest id present after the cursor
 * (found with an index probe), so a gap in the ids never produces an empty chunk.
 * Returns null when nothing is left at or below `upTo`.
 */
export function planChunk(firstExisting: Id | null, span: number, upTo: Id): IdRange | null {
  if (firstExisting === null || compareIds(firstExisting, upTo) > 0) return null;
  return { lo: firstExisting, hi: minId(addId(firstExisting, span - 1), upTo) };
}
