import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { InvalidInput } from '../../../lambdas/core/errors.ts';
import { identityOf, parseInput, tableCopyInputSchema } from '../../../lambdas/core/table-copy-input.ts';

const example = JSON.parse(readFileSync(new URL('../../../examples/csmh-extended.json', import.meta.url), 'utf8'));
const parse = (raw: unknown) => parseInput(tableCopyInputSchema, raw);

function refusal(raw: unknown): InvalidInput {
  try {
    parse(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidInput);
    return err as InvalidInput;
  }
  throw new Error('input was accepted');
}

describe('table-copy input', () => {
  it('accepts the example and fills defaults', () => {
    const input = parse(example);
    // left out: chosen from the measured insert rate, and said so in the identity
    expect(input.idOffset).toBeUndefined();
    expect(identityOf(input).idOffset).toBe('auto');
    expect(input.catchUp).toEqual({ quietSeconds: 30, pollSeconds: 5 });
    expect(input.throttle.waitSeconds).toBe(10);
    expect(input.execution.maxLoopIterations).toBe(1000);
  });

  it('ignores the key Step Functions adds to a started execution', () => {
    expect(parse({ ...example, AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID: 'arn:x' }).migrationId).toBe('csmh-extended');
  });

  it.each([
    [{ ...example, colour: 'red' }, '(input)', /unknown field "colour"/],
    [{ ...example, source: { ...example.source, table: 'courseware`; DROP TABLE x; --' } }, 'source.table', /plain table name/],
    [{ ...example, target: { ...example.target, database: 'a.b' } }, 'target.database', /plain database name/],
    [{ ...example, source: { ...example.source, connection: 'mysql://root:pw@db:3306' } }, 'source.connection', /never a URL or credentials/],
    [{ ...example, chunk: { ...example.chunk, minRows: -5 } }, 'chunk.minRows', /at least 1/],
    [{ ...example, chunk: { ...example.chunk, maxRows: 50_000_000 } }, 'chunk.maxRows', /at most 1,000,000/],
    [{ ...example, chunk: { minRows: 500, maxRows: 100 } }, 'chunk.minRows', /must not exceed maxRows/],
    [{ ...example, chunk: { targetMillis: 1 } }, 'chunk.targetMillis', /at least 10/],
    [{ ...example, idOffset: 1000 }, 'idOffset', /expected string/],
    [{ ...example, idOffset: '-1' }, 'idOffset', /non-negative whole number/],
    [{ ...example, target: example.source }, 'target.table', /different table/],
    [{ ...example, cleanup: { mode: 'drop' } }, 'cleanup.mode', /trickle-delete/],
    [{ ...example, throttle: { query: 'SELECT 1; DROP TABLE x' } }, 'throttle.query', /single SELECT/],
    [{ ...example, migrationId: 'a/b' }, 'migrationId', /letters, digits/],
  ])('refuses bad input %#, naming the field', (raw, field, message) => {
    const err = refusal(raw);
    expect(err.field).toBe(field);
    expect(err.message).toMatch(message);
  });

  it('identity leaves out tuning, so throttle and chunk may change on resume', () => {
    const a = identityOf(parse(example));
    const b = identityOf(parse({ ...example, chunk: { targetMillis: 100 }, throttle: { maxThreadsRunning: 5 } }));
    const c = identityOf(parse({ ...example, idOffset: '5' }));
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });
});
