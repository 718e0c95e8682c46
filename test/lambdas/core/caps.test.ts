import { afterEach, describe, expect, it, vi } from 'vitest';
import { capOf, capVariables, overCap } from '../../../lambdas/core/caps.ts';
import { InvalidInput } from '../../../lambdas/core/errors.ts';
import { parseInput } from '../../../lambdas/core/input-parts.ts';
import { describeKnobsSet, parseKnobAssignments, withKnobs } from '../../../lambdas/core/knobs.ts';
import { onlineAlterInputSchema } from '../../../lambdas/core/online-alter-input.ts';
import { tableCopyInputSchema } from '../../../lambdas/core/table-copy-input.ts';

const tableCopy = {
  migrationId: 'm',
  source: { connection: 'edxapp', database: 'a', table: 't' },
  target: { connection: 'edxapp', database: 'b', table: 't' },
};
const onlineAlter = { migrationId: 'm', table: { connection: 'edxapp', database: 'a', table: 't' }, alter: 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT' };

function refusal(fn: () => unknown): InvalidInput {
  try {
    fn();
  } catch (err) {
    if (err instanceof InvalidInput) return err;
    throw err;
  }
  throw new Error('not refused');
}

describe('caps on the knobs that switch protections off', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('refuse an input over a cap, naming the field, the cap and where it is set', () => {
    // Arrange / Act
    const threads = refusal(() => parseInput(tableCopyInputSchema, { ...tableCopy, throttle: { maxThreadsRunning: 201 } }));
    const rows = refusal(() => parseInput(tableCopyInputSchema, { ...tableCopy, cleanup: { mode: 'trickle-delete', batchRows: 50_001 } }));
    const altered = refusal(() => parseInput(onlineAlterInputSchema, { ...onlineAlter, cleanup: { mode: 'trickle-delete', batchRows: 1_000_000 } }));

    // Assert
    expect(threads.field).toBe('throttle.maxThreadsRunning');
    expect(threads.message).toBe(
      "throttle.maxThreadsRunning: at most 200, the cap on throttle.maxThreadsRunning (set by caps.throttle.maxThreadsRunning in the stack's config on AWS, by FERRY_CAP_THROTTLE_MAX_THREADS_RUNNING locally; default 200)",
    );
    expect(rows.field).toBe('cleanup.batchRows');
    expect(rows.message).toMatch(/^cleanup\.batchRows: at most 50000, the cap on cleanup\.batchRows \(set by caps\.cleanup\.batchRows in the stack's config on AWS, by FERRY_CAP_CLEANUP_BATCH_ROWS locally/);
    expect(altered.field).toBe('cleanup.batchRows');
    expect(altered.message).toMatch(/at most 50000, the cap on cleanup\.batchRows/);
  });

  it('take the caps themselves, and the defaults', () => {
    const input = parseInput(tableCopyInputSchema, { ...tableCopy, throttle: { maxThreadsRunning: 200 }, cleanup: { mode: 'trickle-delete', batchRows: 50_000 } });
    expect(input.throttle.maxThreadsRunning).toBe(200);
    expect(input.cleanup.batchRows).toBe(50_000);
    expect(parseInput(tableCopyInputSchema, tableCopy).throttle.maxThreadsRunning).toBe(25);
  });

  it('follow the environment (what the stack sets on AWS, or an operator locally)', () => {
    vi.stubEnv('FERRY_CAP_THROTTLE_MAX_THREADS_RUNNING', '50');
    vi.stubEnv('FERRY_CAP_CLEANUP_BATCH_ROWS', '100000');
    expect(refusal(() => parseInput(tableCopyInputSchema, { ...tableCopy, throttle: { maxThreadsRunning: 51 } })).message).toMatch(/at most 50, the cap/);
    expect(parseInput(tableCopyInputSchema, { ...tableCopy, cleanup: { mode: 'trickle-delete', batchRows: 100_000 } }).cleanup.batchRows).toBe(100_000);
    vi.stubEnv('FERRY_CAP_THROTTLE_MAX_THREADS_RUNNING', 'lots');
    expect(() => capOf('throttle.maxThreadsRunning')).toThrow(/FERRY_CAP_THROTTLE_MAX_THREADS_RUNNING=lots: the cap on throttle\.maxThreadsRunning must be a whole number from 1 to 100000/);
    expect(capOf('throttle.maxThreadsRunning', { FERRY_CAP_THROTTLE_MAX_THREADS_RUNNING: '300' })).toBe(300);
    expect(overCap('throttle.maxThreadsRunning', 300, {})).toMatch(/^at most 200/);
    expect(capVariables({ throttle: { maxThreadsRunning: 150 }, cleanup: { batchRows: 10_000 } })).toEqual({ FERRY_CAP_THROTTLE_MAX_THREADS_RUNNING: '150', FERRY_CAP_CLEANUP_BATCH_ROWS: '10000' });
  });

  it('refuse a live knob over a cap (ferry set), and leave out one that got in some other way, saying why', () => {
    expect(() => parseKnobAssignments(['throttle.maxThreadsRunning=1000'])).toThrow(/^throttle\.maxThreadsRunning: at most 200, the cap on throttle\.maxThreadsRunning \(set by caps\.throttle\.maxThreadsRunning/);
    expect(() => parseKnobAssignments(['cleanup.batchRows=60000'])).toThrow(/^cleanup\.batchRows: at most 50000/);
    const input = parseInput(tableCopyInputSchema, tableCopy);
    const tuned = withKnobs(tableCopyInputSchema, input, { 'throttle.maxThreadsRunning': '100000', 'chunk.targetMillis': '300' });
    expect(tuned.input.throttle.maxThreadsRunning).toBe(25);
    expect(tuned.inForce).toEqual({ 'chunk.targetMillis': '300' });
    expect(tuned.ignored).toEqual([expect.stringMatching(/^throttle\.maxThreadsRunning=100000: at most 200, the cap/)]);
  });

  it('show a knob set over its cap as ignored, with why (the approval page)', () => {
    expect(describeKnobsSet({ 'throttle.maxThreadsRunning': '5000', 'chunk.maxRows': '300' })).toEqual({
      'throttle.maxThreadsRunning': expect.stringMatching(/^5000 \(ignored: at most 200, the cap on throttle\.maxThreadsRunning/),
      'chunk.maxRows': '300',
    });
  });
});
