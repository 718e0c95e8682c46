import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { doctypeCopyInputSchema } from '../../../lambdas/core/doctype-copy-input.ts';
import { parseInput } from '../../../lambdas/core/input-parts.ts';

const example = JSON.parse(readFileSync(new URL('../../../examples/user-db-migration.json', import.meta.url), 'utf8'));
const refusal = (raw: unknown) => {
  try {
    parseInput(doctypeCopyInputSchema, raw);
  } catch (err) {
    return err as { name: string; field: string; message: string };
  }
  throw new Error('accepted');
};

describe('doctype-copy input', () => {
  it('accepts the example', () => {
    const input = parseInput(doctypeCopyInputSchema, example);
    expect(input.docTypes).toContain('CommCareUser');
    expect(input.page.docs).toBe(1000);
  });

  it.each([
    [{ ...example, docTypes: [] }, 'docTypes', /at least one/],
    [{ ...example, docTypes: 'CommCareUser' }, 'docTypes', /list of doc type names/],
    [{ ...example, docTypes: ['Group', 'Group'] }, 'docTypes', /twice/],
    [{ ...example, docTypes: ['Group', 'bad type!'] }, 'docTypes.1', /doc types are names/],
    [{ ...example, source: { connection: 'main', database: 'CommCareHQ' } }, 'source.database', /CouchDB database name/],
    [{ ...example, target: { connection: example.source.connection, database: example.source.database } }, 'target.database', /different database/],
    [{ ...example, cleanup: { mode: 'purge' } }, 'cleanup.mode', /delete/],
  ])('refuses bad input %#, naming the field', (raw, field, message) => {
    const err = refusal(raw);
    expect(err.name).toBe('InvalidInput');
    expect(err.field).toBe(field);
    expect(err.message).toMatch(message);
  });
});
