import { describe, expect, it } from 'vitest';
import { parseKnobAssignments, withKnobs } from '../../../lambdas/core/knobs.ts';
import { parseInput } from '../../../lambdas/core/input-parts.ts';
import { tableCopyInputSchema } from '../../../lambdas/core/table-copy-input.ts';
import { tuneInput } from '../../../lambdas/core/machine-inputs.ts';

const raw = {
  migrationId: 'm',
  source: { connection: 'edxapp', database: 'a', table: 't' },
  target: { connection: 'edxapp', database: 'b', table: 't' },
  chunk: { minRows: 100, maxRows: 1000 },
};
const input = parseInput(tableCopyInputSchema, raw);

describe('live knobs', () => {
  it('put the values into the input, validated by the machine schema', () => {
    const tuned = withKnobs(tableCopyInputSchema, input, { 'chunk.targetMillis': '250', 'throttle.maxThreadsRunning': '10' });
    expect(tuned.input.chunk.targetMillis).toBe(250);
    expect(tuned.input.throttle.maxThreadsRunning).toBe(10);
    expect(tuned.inForce).toEqual({ 'chunk.targetMillis': '250', 'throttle.maxThreadsRunning': '10' });
    expect(tuned.ignored).toEqual([]);
    // the input itself is untouched
    expect(input.chunk.targetMillis).toBe(500);
  });

  it('take two knobs that only make sense together (a lower maxRows with a lower minRows)', () => {
    const tuned = withKnobs(tableCopyInputSchema, input, { 'chunk.maxRows': '50', 'chunk.minRows': '10' });
    expect(tuned.input.chunk).toMatchObject({ minRows: 10, maxRows: 50 });
    expect(tuned.ignored).toEqual([]);
  });

  it('leave out, naming why, a knob the schema refuses or the machine does not have, and keep the rest', () => {
    const tuned = withKnobs(tableCopyInputSchema, input, { 'chunk.maxRows': '50', 'page.docs': '10', 'throttle.waitSeconds': '0', 'throttle.replica.maxLagSeconds': '5', 'chunk.targetMillis': '300' });
    expect(tuned.inForce).toEqual({ 'chunk.targetMillis': '300' });
    expect(tuned.ignored).toEqual([
      'chunk.maxRows=50: chunk.minRows minRows must not exceed maxRows',
      "page.docs=10: this migration's input has no page.docs",
      "throttle.replica.maxLagSeconds=5: this migration's input has no throttle.replica.maxLagSeconds",
      'throttle.waitSeconds=0: at least 1 second',
    ]);
    expect(tuned.input.chunk).toMatchObject({ targetMillis: 300, maxRows: 1000 });
  });

  it('take the ones that go together even when another of them does not apply', () => {
    const tuned = withKnobs(tableCopyInputSchema, input, { 'chunk.maxRows': '50', 'chunk.minRows': '10', 'throttle.replica.maxLagSeconds': '5' });
    expect(tuned.input.chunk).toMatchObject({ minRows: 10, maxRows: 50 });
    expect(tuned.inForce).toEqual({ 'chunk.maxRows': '50', 'chunk.minRows': '10' });
    expect(tuned.ignored).toEqual(["throttle.replica.maxLagSeconds=5: this migration's input has no throttle.replica.maxLagSeconds"]);
  });

  it('are refused on the command line with the field and the rule', () => {
    expect(() => parseKnobAssignments(['chunk.targetMillis=5'])).toThrow(/chunk\.targetMillis: at least 10 ms/);
    expect(() => parseKnobAssignments(['chunk.targetMillis=1e3'])).toThrow(/must be a whole number/);
    expect(() => parseKnobAssignments(['migrationId=x'])).toThrow(/migrationId: not a knob/);
    expect(() => parseKnobAssignments([])).toThrow(/name at least one knob/);
    expect(parseKnobAssignments(['page.docs=20', 'chunk.maxRows='])).toEqual({ set: { 'page.docs': '20' }, unset: ['chunk.maxRows'] });
  });

  it('apply by the machine the input is for', () => {
    const docs = { migrationId: 'd', source: { connection: 'main', database: 'commcarehq' }, target: { connection: 'main', database: 'users' }, docTypes: ['CommCareUser'] };
    expect(tuneInput(docs, { 'page.docs': '20', 'chunk.maxRows': '5' })).toMatchObject({ inForce: { 'page.docs': '20' }, ignored: ["chunk.maxRows=5: this migration's input has no chunk.maxRows"] });
  });
});
