import { describe, expect, it } from 'vitest';
import { chooseIdOffset, ID_OFFSET_FLOOR } from '../../../lambdas/core/id-offset.ts';

describe('chooseIdOffset', () => {
  it('never goes below the floor, even for a table nobody writes', () => {
    expect(chooseIdOffset(0n, 10_000)).toEqual({ offset: ID_OFFSET_FLOOR, insertsPerHour: 0n });
  });

  it('takes a day of the measured insert rate when that is more', () => {
    // 80,000 rows an hour is 222 in 10 s: a day of it is about 1.92 million ids
    const c = chooseIdOffset(222n, 10_000);
    expect(c.insertsPerHour).toBe(79_920n);
    expect(c.offset).toBe(1_918_080n);
  });

  it('stays exact for a huge rate', () => {
    expect(chooseIdOffset(10n ** 15n, 1000).offset).toBe(86_400n * 10n ** 15n);
  });
});
