import { describe, expect, it } from 'vitest';
import { classifyChanges, seqNumber } from '../../../../lambdas/core/docs/changes.ts';
import { type ChangeRow } from '../../../../lambdas/core/ports/couch.ts';
import { isDataDocId, wantedDocTypes } from '../../../../lambdas/core/docs/doc-types.ts';

const wanted = new Set(wantedDocTypes(['CommCareUser', 'Group']));
const row = (id: string, extra: Partial<ChangeRow> = {}): ChangeRow => ({ id, seq: '1', changes: [{ rev: '1-a' }], ...extra });

describe('wantedDocTypes', () => {
  it('adds each -Deleted twin once', () => {
    expect(wantedDocTypes(['Group', 'CommCareUser', 'Group-Deleted'])).toEqual(['CommCareUser', 'CommCareUser-Deleted', 'Group', 'Group-Deleted']);
  });
  it('never migrates design or local docs', () => {
    expect(isDataDocId('_design/ferry')).toBe(false);
    expect(isDataDocId('_local/x')).toBe(false);
    expect(isDataDocId('abc')).toBe(true);
  });
});

describe('classifyChanges', () => {
  it('copies docs of the wanted types and their -Deleted twins with every leaf', () => {
    const actions = classifyChanges(
      [
        row('u1', { doc: { doc_type: 'CommCareUser' }, changes: [{ rev: '3-w' }, { rev: '2-c' }] }),
        row('u2', { doc: { doc_type: 'Group-Deleted' } }),
        row('c1', { doc: { doc_type: 'CommCareCase' } }),
      ],
      wanted,
      new Set(),
    );
    expect(actions).toEqual([
      { kind: 'copy', id: 'u1', revs: ['3-w', '2-c'], deleted: false },
      { kind: 'copy', id: 'u2', revs: ['1-a'], deleted: false },
      { kind: 'ignore', id: 'c1' },
    ]);
  });

  it('copies a tombstone only for a doc the target holds (a tombstone has no doc_type)', () => {
    const actions = classifyChanges(
      [row('moved', { deleted: true, doc: { _deleted: true } as never }), row('other', { deleted: true })],
      wanted,
      new Set(['moved']),
    );
    expect(actions).toEqual([
      { kind: 'copy', id: 'moved', revs: ['1-a'], deleted: true },
      { kind: 'ignore', id: 'other' },
    ]);
  });

  it('reports a doc whose doc_type left the set, and does not copy it', () => {
    expect(classifyChanges([row('u1', { doc: { doc_type: 'Retired' } })], wanted, new Set(['u1']))).toEqual([{ kind: 'moved-out', id: 'u1', docType: 'Retired' }]);
  });

  it('keeps only the last change of a doc in one page, and skips design docs', () => {
    const actions = classifyChanges(
      [row('u1', { doc: { doc_type: 'CommCareUser' } }), row('_design/x'), row('u1', { seq: '9', changes: [{ rev: '2-b' }], doc: { doc_type: 'CommCareUser' } })],
      wanted,
      new Set(),
    );
    expect(actions).toEqual([{ kind: 'copy', id: 'u1', revs: ['2-b'], deleted: false }]);
  });
});

describe('seqNumber', () => {
  it('reads integer seqs and the prefix of opaque CouchDB 2+ seqs', () => {
    expect(seqNumber('42')).toBe(42);
    expect(seqNumber(42)).toBe(42);
    expect(seqNumber('1234-g1AAAAFTeJzLYWBg4MhgTmEQTM4vTc5ISXIwNDLXMwBCwxygFFMiQ5L8')).toBe(1234);
    expect(seqNumber('now')).toBeNull();
    expect(seqNumber(null)).toBeNull();
  });
});
