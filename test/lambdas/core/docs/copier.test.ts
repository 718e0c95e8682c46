import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NanoConnector } from '../../../../lambdas/adapters/couch.ts';
import { copyPage, readRevisions } from '../../../../lambdas/core/docs/copier.ts';
import { ScanIndex, ViewIndex, type DocTypeIndex } from '../../../../lambdas/core/docs/doc-type-index.ts';
import type { CouchDatabase } from '../../../../lambdas/core/ports/couch.ts';
import { bulk, couch, couchUrl, createDb, revisions, uniqueDb } from '../../../helpers/couch.ts';

describe('doc copier against PouchDB Server', () => {
  let connector: NanoConnector;
  beforeAll(() => {
    connector = new NanoConnector({ COUCH_URL: couchUrl() });
  });
  afterAll(() => undefined);

  async function databases(n: number): Promise<{ source: CouchDatabase; target: CouchDatabase; src: string; tgt: string }> {
    const [src, tgt] = [uniqueDb('pg_src'), uniqueDb('pg_tgt')];
    await createDb(src);
    await createDb(tgt);
    await bulk(src, Array.from({ length: n }, (_, i) => ({ _id: `u${String(i).padStart(4, '0')}`, doc_type: i % 3 === 0 ? 'Other' : 'WebUser' })));
    await couch('PUT', `/${src}/_design/all_docs`, { views: { by_doc_type: { map: 'function (doc) { if (doc.doc_type) { emit([doc.doc_type, doc._id], null); } }', reduce: '_count' } } });
    return { source: await connector.database('main', src), target: await connector.database('main', tgt), src, tgt };
  }

  const indexes: [string, (db: CouchDatabase) => DocTypeIndex][] = [
    ['a view keyed [doc_type, id]', (db) => new ViewIndex(db, 'all_docs', 'by_doc_type', ['WebUser', 'WebUser-Deleted'])],
    ['a scan of _all_docs', (db) => new ScanIndex(db, ['WebUser', 'WebUser-Deleted'])],
  ];

  it.each(indexes)('paging through %s skips no doc when the last doc of a page is deleted before the next page', async (_name, make) => {
    const { source, target, src, tgt } = await databases(60);
    const index = make(source);
    const first = await copyPage(source, target, index, null, 10);
    expect(first.nextCursor).not.toBeNull();
    // the last doc of that page goes before the next page is read
    const last = first.lastId!;
    const rev = (await revisions(src))[last]!;
    await bulk(src, [{ _id: last, _rev: rev, _deleted: true }]);
    let cursor = first.nextCursor;
    while (cursor !== null) cursor = (await copyPage(source, target, index, cursor, 10)).nextCursor;
    const wanted = Object.keys(await revisions(src)).filter((id) => Number(id.slice(1)) % 3 !== 0);
    expect(Object.keys(await revisions(tgt)).filter((id) => id !== last).sort()).toEqual(wanted.sort());
  });

  it('asks again for a revision the source did not give, and fails loudly when it never does', async () => {
    const { source, src } = await databases(6);
    const revs = await revisions(src);
    const items = Object.entries(revs).map(([id, rev]) => ({ id, rev }));
    let drops = 1;
    const flaky: CouchDatabase = Object.assign(Object.create(source) as CouchDatabase, {
      bulkGet: async (asked: readonly { id: string; rev: string }[]) => {
        const got = await source.bulkGet(asked);
        if (drops-- <= 0) return got;
        const [gone, ...kept] = got.docs;
        return { docs: kept, missing: [...got.missing, { id: gone!._id, rev: gone!._rev, error: 'unknown_error' }] };
      },
    });
    expect((await readRevisions(flaky, items)).map((d) => d._id).sort()).toEqual(Object.keys(revs).sort());
    drops = 2;
    await expect(readRevisions(flaky, items)).rejects.toMatchObject({ name: 'TransientError', message: expect.stringMatching(/did not give revision .* twice/) });
  });
});
