import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { alterClauseProblem, onlineAlterInputSchema } from '../../../lambdas/core/online-alter-input.ts';
import { parseInput } from '../../../lambdas/core/input-parts.ts';

const example = JSON.parse(readFileSync(new URL('../../../examples/csm-bigint.json', import.meta.url), 'utf8'));

describe('online-alter input', () => {
  it('accepts the example and fills the cut-over defaults', () => {
    const input = parseInput(onlineAlterInputSchema, example);
    expect(input.cutover).toEqual({ lockWaitSeconds: 2, attempts: 10 });
  });

  it.each([
    ['MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT', null],
    ['ADD COLUMN x int NULL, ADD INDEX (x)', null],
    ['', /empty/],
    ['MODIFY id bigint; DROP TABLE users', /one clause/],
    ['RENAME TO other', /must not RENAME/],
    ['ALTER TABLE t MODIFY id bigint', /clause only/],
    ['DROP PRIMARY KEY, ADD UNIQUE KEY (id)', null],
    ['MODIFY id bigint -- sneaky', /comments/],
    ['MODIFY id bigint /* x */', /comments/],
  ])('judges %j', (clause, problem) => {
    const result = alterClauseProblem(clause);
    if (problem === null) expect(result).toBeNull();
    else expect(result).toMatch(problem);
  });

  it('names the field of a refused clause and of a table name too long for its shadow', () => {
    expect(() => parseInput(onlineAlterInputSchema, { ...example, alter: 'RENAME TO x' })).toThrow(/^alter: must not RENAME/);
    expect(() => parseInput(onlineAlterInputSchema, { ...example, table: { ...example.table, table: 'x'.repeat(60) } })).toThrow(/^table.table: at most 59/);
  });
});
