import { beforeAll, describe, expect, it } from 'vitest';
import { NanoConnector } from '../../../../lambdas/adapters/couch.ts';
import { checkWritten, compareTargetWithSource, rawCompare } from '../../../../lambdas/core/docs/compare.ts';
import { copyRevisions } from '../../../../lambdas/core/docs/copier.ts';
import { TransientError } from '../../../../lambdas/core/errors.ts';
import type { CouchDatabase } from '../../../../lambdas/core/ports/couch.ts';
import { bulk, couch, couchUrl, createDb, revisions, uniqueDb } from '../../../helpers/couch.ts';

type Doc = Record<string, unknown> & { _id: string; _rev: string };

describe('checks of the doc copy against PouchDB Server', () => {
  let connector: NanoConnector;
  beforeAll(() => {
    connector = new NanoConnector({ COUCH_URL: couchUrl() });
  });

  /** A source of `n` docs, every `every`-th a WebUser and the rest Other, and a target holding the WebUsers as ferry copies them. */
  async function copied(n: number, every: number) {
    const [src, tgt] = [uniqueDb('cmp_src'), uniqueDb('cmp_tgt')];
    await createDb(src);
    await createDb(tgt);
    await bulk(src, Array.from({ length: n }, (_, i) => ({ _id: `u${String(i).padStart(4, '0')}`, doc_type: i % every === 0 ? 'WebUser' : 'Other' })));
    const source = await connector.database('main', src);
    const target = await connector.database('main', tgt);
    const revs = await revisions(src);
    const users = Object.keys(revs).filter((id) => Number(id.slice(1)) % every === 0);
    const written = await copyRevisions(source, target, users.map((id) => ({ id, rev: revs[id]! })));
    return { source, target, src, tgt, users, written };
  }

  const put = async (db: string, id: string, change: Record<string, unknown>) => {
    const doc = (await couch<Doc>('GET', `/${db}/${id}`)).body;
    return (await couch<{ rev: string }>('PUT', `/${db}/${id}`, { ...doc, ...change })).body.rev;
  };

  it('checkWritten passes docs written as the source holds them, and fails a write that did not land', async () => {
    const { source, target, written, users } = await copied(30, 3);
    expect(await checkWritten(source, target, written)).toBe(users.length);
    // a target that never received what ferry wrote
    const empty = uniqueDb('cmp_empty');
    await createDb(empty);
    const nowhere = await connector.database('main', empty);
    await expect(checkWritten(source, nowhere, written)).rejects.toThrow(TransientError);
    await expect(checkWritten(source, nowhere, written)).rejects.toThrow(new RegExp(`shows nothing for doc ${users[0]} and lacks the source's winner`));
  });

  /** The database, counting its `_all_docs` reads by key. */
  function countingKeys(db: CouchDatabase) {
    const counted = { byKey: 0 };
    const wrapped = Object.assign(Object.create(db) as CouchDatabase, {
      allDocs: (qs: Record<string, unknown>, keys?: readonly string[]) => {
        if (keys) counted.byKey += 1;
        return db.allDocs(qs, keys);
      },
    });
    return { db: wrapped, counted };
  }

  it('checkWritten reads the target as a range where other docs lie between the ids written (up to eight rows per id), by key only beyond', async () => {
    for (const [every, byKey] of [[4, false], [30, true]] as const) {
      const { source, target, src, written, users } = await copied(every * 40, every);
      // the target also holds the docs between them, as it holds the types copied before this page's
      const revs = await revisions(src);
      await copyRevisions(source, target, Object.keys(revs).filter((id) => !users.includes(id)).map((id) => ({ id, rev: revs[id]! })));
      const { db, counted } = countingKeys(target);
      expect(await checkWritten(source, db, written)).toBe(users.length);
      expect(counted.byKey > 0).toBe(byKey);
    }
  });

  it('checkWritten passes a page written again after the source deleted the winning leaf of a conflicted doc', async () => {
    const { source, target, src } = await copied(3, 3);
    // two leaves in the source, 1-b the winner
    await couch('POST', `/${src}/_bulk_docs`, { new_edits: false, docs: [{ _id: 'x', _rev: '1-aaaa', doc_type: 'WebUser' }, { _id: 'x', _rev: '1-bbbb', doc_type: 'WebUser' }] });
    await copyRevisions(source, target, [{ id: 'x', rev: '1-aaaa' }, { id: 'x', rev: '1-bbbb' }]);
    // the source deletes its winning leaf; the page is read and written again: its only live leaf is 1-a
    await couch('DELETE', `/${src}/x?rev=1-bbbb`);
    const again = await copyRevisions(source, target, [{ id: 'x', rev: '1-aaaa' }]);
    expect(await checkWritten(source, target, again)).toBe(1);
  });

  it("checkWritten passes a deletion carried over, leaves to the top-off a doc the source changed again since, and to the application a revision the source never had", async () => {
    const { source, target, src, tgt, written, users } = await copied(30, 3);
    // a deletion carried over as the top-off does: the tombstone is the winner on both sides
    const gone = users[1]!;
    const doc = (await couch<Doc>('GET', `/${src}/${gone}`)).body;
    const tombstone = (await couch<{ rev: string }>('DELETE', `/${src}/${gone}?rev=${doc._rev}`)).body.rev;
    const carried = await copyRevisions(source, target, [{ id: gone, rev: tombstone }]);
    expect(await checkWritten(source, target, carried)).toBe(1);
    // the source wrote the doc again since: the next top-off carries that
    await couch('PUT', `/${src}/${gone}`, { doc_type: 'WebUser', note: 'created again' });
    expect(await checkWritten(source, target, carried)).toBe(1);
    // the application changed the target (after the cut-over): its revision stands
    await put(tgt, users[2]!, { note: "the application's edit" });
    expect(await checkWritten(source, target, written.filter((d) => d.id !== gone))).toBe(users.length - 1);
  });

  it('compareTargetWithSource counts the matching docs by type and names the ones the source deleted or changed', async () => {
    const { source, target, src, users } = await copied(60, 3);
    const [deleted, changed] = [users[3]!, users[7]!];
    const doc = (await couch<Doc>('GET', `/${src}/${deleted}`)).body;
    await couch('DELETE', `/${src}/${deleted}?rev=${doc._rev}`);
    await put(src, changed, { note: 'changed, not carried over' });
    // a doc of another type in the target, as the source holds it
    const other = (await couch<Doc>('GET', `/${src}/u0001`)).body;
    await copyRevisions(source, target, [{ id: other._id, rev: other._rev }]);
    const cmp = await compareTargetWithSource(source, target);
    expect(cmp.matched).toEqual({ WebUser: users.length - 2, Other: 1 });
    expect(cmp.mismatched.map((d) => d.id).sort()).toEqual([deleted, changed].sort());
    expect(cmp.mismatched.every((d) => d.type === 'WebUser')).toBe(true);
    expect(cmp.mismatchedCount).toBe(2);
  });

  it('compareTargetWithSource reads by key where the source holds many other docs between the target ids', async () => {
    const { source, target, users } = await copied(900, 30);
    const cmp = await compareTargetWithSource(source, target);
    expect(cmp.matched).toEqual({ WebUser: users.length });
    expect(cmp.mismatchedCount).toBe(0);
  });

  it('orders ids as _all_docs does, by their UTF-8 bytes', () => {
    const ids = ['b', 'B', 'a\u{1F600}', 'a\uFF21', 'a', '_x', 'A'];
    const bytes = (id: string) => [...new TextEncoder().encode(id)];
    const byBytes = [...ids].sort((x, y) => {
      const [p, q] = [bytes(x), bytes(y)];
      for (let i = 0; i < Math.min(p.length, q.length); i++) if (p[i] !== q[i]) return p[i]! - q[i]!;
      return p.length - q.length;
    });
    expect([...ids].sort(rawCompare)).toEqual(byBytes);
    // where JavaScript's own order differs: an astral character against one of U+E000…U+FFFF
    expect(rawCompare('a\u{1F600}', 'a\uFF21')).toBeGreaterThan(0);
    expect('a\u{1F600}' < 'a\uFF21').toBe(true);
  });
});
