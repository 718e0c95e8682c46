import { describe, expect, it } from 'vitest';
import { splitRange } from '../../../../lambdas/core/tables/partitions.ts';

describe('splitRange', () => {
  it('covers every id exactly once in contiguous, non-empty ranges of about equal span', () => {
    for (const [lo, hi, count] of [['1', '10', 3], ['0', '0', 4], ['5', '7', 40], ['1', '2147483647', 4], ['18446744073709551600', '18446744073709551615', 5]] as const) {
      const parts = splitRange(lo, hi, count);
      expect(parts.length).toBe(Math.min(count, Number(BigInt(hi) - BigInt(lo) + 1n)));
      expect(parts[0]!.lo).toBe(lo);
      expect(parts.at(-1)!.hi).toBe(hi);
      parts.forEach((p, i) => {
        expect(p.index).toBe(i);
        expect(BigInt(p.hi)).toBeGreaterThanOrEqual(BigInt(p.lo));
        if (i > 0) expect(BigInt(p.lo)).toBe(BigInt(parts[i - 1]!.hi) + 1n);
      });
      const spans = parts.map((p) => BigInt(p.hi) - BigInt(p.lo) + 1n);
      expect(spans.reduce((a, b) => (a > b ? a : b)) - spans.reduce((a, b) => (a < b ? a : b))).toBeLessThanOrEqual(1n);
    }
    expect(splitRange('10', '9', 2)).toEqual([]);
  });
});
