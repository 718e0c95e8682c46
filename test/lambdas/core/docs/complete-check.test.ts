import { describe, expect, it } from 'vitest';
import { checkComplete, type CompletenessFacts } from '../../../../lambdas/core/docs/complete-check.ts';

const ok: CompletenessFacts = {
  checkpointFound: true,
  initialCopyDone: true,
  wanted: ['Group', 'Group-Deleted'],
  sourceCounts: { Group: 5, 'Group-Deleted': 1 },
  targetCounts: { Group: 5, 'Group-Deleted': 1 },
  checkpointSeq: '100',
  sourceSeq: '150',
  maxSeqLag: 100,
};

describe('checkComplete', () => {
  it('passes when every condition holds', () => {
    expect(checkComplete(ok)).toEqual({ complete: true });
  });

  it('fails without a checkpoint, or before the initial copy finished', () => {
    expect(checkComplete({ ...ok, checkpointFound: false })).toMatchObject({ complete: false, problems: [expect.stringContaining('never ran')] });
    expect(checkComplete({ ...ok, initialCopyDone: false })).toMatchObject({ complete: false, problems: [expect.stringContaining('not finished')] });
  });

  it('names the doc types whose counts differ, with a table', () => {
    const v = checkComplete({ ...ok, targetCounts: { Group: 4 } });
    expect(v.complete).toBe(false);
    const text = (v as { problems: readonly string[] }).problems.join('\n');
    expect(text).toMatch(/Group\s+5\s+4\s+≠/);
    expect(text).toMatch(/Group-Deleted\s+1\s+0\s+≠/);
  });

  it('fails when the checkpoint trails the source by more than allowed, reading opaque seqs by their prefix', () => {
    expect(checkComplete({ ...ok, checkpointSeq: '10-g1AAA', sourceSeq: '500-g1BBB' })).toMatchObject({ complete: false, problems: [expect.stringContaining('490 changes behind')] });
    expect(checkComplete({ ...ok, checkpointSeq: null })).toMatchObject({ complete: false });
  });

  it('reports every problem at once', () => {
    const v = checkComplete({ ...ok, initialCopyDone: false, targetCounts: {}, checkpointSeq: '0', sourceSeq: '1000' });
    expect((v as { problems: readonly string[] }).problems).toHaveLength(3);
  });

  it("lets each type's counts differ by its own docs changed since the top-off seq, no more", () => {
    const moved = { ...ok, sourceCounts: { Group: 7, 'Group-Deleted': 1 }, targetCounts: { Group: 5, 'Group-Deleted': 1 } };
    expect(checkComplete({ ...moved, countSlack: { Group: 2 } })).toEqual({ complete: true });
    // another type's changes do not cover it
    expect(checkComplete({ ...moved, countSlack: { Group: 1, 'Group-Deleted': 5 } })).toMatchObject({ complete: false, problems: [expect.stringContaining('by more than the docs changed since')] });
  });
});
