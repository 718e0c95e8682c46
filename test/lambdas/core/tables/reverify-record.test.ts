import { describe, expect, it } from 'vitest';
import { describeReverify, endPass, freshReverify } from '../../../../lambdas/core/tables/reverify-record.ts';

describe('describeReverify', () => {
  it('says re-verification is off when reverify.everySeconds is 0, whatever the record holds', () => {
    // Arrange
    const now = Date.parse('2026-01-01T12:00:00Z');
    const old = freshReverify();
    endPass(old, now - 3_600_000);

    // Act
    const none = describeReverify(null, now, 0);
    const stale = describeReverify(old, now, 0);

    // Assert
    for (const words of [none, stale]) {
      expect(words).toMatch(/^off: reverify\.everySeconds is 0/);
      expect(words).not.toMatch(/pending|not re-verified yet|minutes ago/);
    }
  });

  it('otherwise says when the last pass ended, or that none has yet', () => {
    const now = Date.parse('2026-01-01T12:00:00Z');
    const r = freshReverify();
    expect(describeReverify(r, now, 600)).toBe('not re-verified yet');
    endPass(r, now - 120_000);
    expect(describeReverify(r, now, 600)).toBe('verified 2 minutes ago, 0 ranges, 0 differences');
    expect(describeReverify(r, now)).toBe('verified 2 minutes ago, 0 ranges, 0 differences');
  });
});
