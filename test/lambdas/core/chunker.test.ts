import { describe, expect, it } from 'vitest';
import { chunkSettings, initialChunkSpan, nextChunkSpan, planChunk, type ChunkSettings } from '../../../lambdas/core/chunker.ts';

const s: ChunkSettings = { targetMillis: 500, minSpan: 100, maxSpan: 100_000 };

describe('nextChunkSpan', () => {
  it('keeps the span when a chunk took its target time', () => {
    expect(nextChunkSpan(10_000, 500, s)).toBe(10_000);
  });

  it('grows at most ×1.5 a step however fast the chunk was', () => {
    expect(nextChunkSpan(10_000, 50, s)).toBe(15_000);
    expect(nextChunkSpan(10_000, 1, s)).toBe(15_000);
  });

  it('grows only as far as the target when slightly fast', () => {
    expect(nextChunkSpan(10_000, 400, s)).toBe(12_500);
  });

  it('cuts at once, in full proportion, after an outlier', () => {
    // 10× the target: the next chunk is a tenth, not a gentle step down
    expect(nextChunkSpan(10_000, 5_000, s)).toBe(1_000);
  });

  it('shrinks halfway toward the ideal when a little slow, so noise does not make it jitter', () => {
    // ideal 8,333; halfway between 10,000 and that
    expect(nextChunkSpan(10_000, 600, s)).toBe(9_167);
  });

  it('clamps to [minSpan, maxSpan]', () => {
    expect(nextChunkSpan(90_000, 10, s)).toBe(100_000);
    expect(nextChunkSpan(150, 60_000, s)).toBe(100);
  });

  it('takes its bounds from the input fields minRows and maxRows', () => {
    expect(chunkSettings({ targetMillis: 250, minRows: 7, maxRows: 70 })).toEqual({ targetMillis: 250, minSpan: 7, maxSpan: 70 });
  });

  it('starts small', () => {
    expect(initialChunkSpan(s)).toBe(1000);
    expect(initialChunkSpan({ ...s, maxSpan: 500 })).toBe(500);
    expect(initialChunkSpan({ ...s, minSpan: 5000 })).toBe(5000);
  });
});

describe('planChunk', () => {
  it('starts at the first existing id, so a gap makes no empty chunk', () => {
    expect(planChunk('1000000', 500, '2147483647')).toEqual({ lo: '1000000', hi: '1000499' });
  });

  it('stops at the upper bound', () => {
    expect(planChunk('2147483600', 1000, '2147483647')).toEqual({ lo: '2147483600', hi: '2147483647' });
  });

  it('is null when nothing is left', () => {
    expect(planChunk(null, 1000, '10')).toBeNull();
    expect(planChunk('11', 1000, '10')).toBeNull();
  });

  it('is exact past 2^53', () => {
    expect(planChunk('18446744073709550616', 1000, '18446744073709551615')).toEqual({ lo: '18446744073709550616', hi: '18446744073709551615' });
    expect(planChunk('9007199254740993', 2, '18446744073709551615')).toEqual({ lo: '9007199254740993', hi: '9007199254740994' });
  });
});
