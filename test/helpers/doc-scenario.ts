import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir, writeJson } from './cli.ts';
import { bulk, couch, couchUrl, createDb, uniqueDb } from './couch.ts';

export const WANTED = ['CommCareUser', 'WebUser', 'Group'];
const OTHER = ['CommCareCase', 'XFormInstance'];

export interface DocScenario {
  readonly source: string;
  readonly target: string;
  readonly stateDir: string;
  readonly env: NodeJS.ProcessEnv;
  readonly migrationId: string;
  input(overrides?: Record<string, unknown>): Record<string, unknown>;
  inputFile(overrides?: Record<string, unknown>): string;
  flags(): Record<string, string>;
}

/**
 * A source database with docs of wanted types, their -Deleted twins and other types, one doc
 * edited twice (history), one with two conflicting leaves, one with an attachment; an empty target.
 */
export async function docScenario(opts: { docs?: number } = {}): Promise<DocScenario> {
  const source = uniqueDb('commcarehq');
  const target = uniqueDb('users');
  await createDb(source);
  await createDb(target);
  const types = [...WANTED, `${WANTED[0]}-Deleted`, ...OTHER];
  const docs = Array.from({ length: opts.docs ?? 300 }, (_, i) => ({ _id: `d${String(i).padStart(6, '0')}`, doc_type: types[i % types.length], n: i }));
  for (let i = 0; i < docs.length; i += 5000) await bulk(source, docs.slice(i, i + 5000));
  const edited = await bulk(source, [{ _id: 'edited', doc_type: 'WebUser', v: 1 }]);
  const second = await bulk(source, [{ _id: 'edited', _rev: edited[0]!.rev, doc_type: 'WebUser', v: 2 }]);
  await bulk(source, [{ _id: 'edited', _rev: second[0]!.rev, doc_type: 'WebUser', v: 3 }]);
  await bulk(source, [
    { _id: 'conflicted', _rev: '1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', doc_type: 'Group', side: 'a' },
    { _id: 'conflicted', _rev: '1-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', doc_type: 'Group', side: 'b' },
  ], false);
  await bulk(source, [{ _id: 'with-attachment', doc_type: 'CommCareUser', _attachments: { 'photo.txt': { content_type: 'text/plain', data: Buffer.from('a photo of a user').toString('base64') } } }]);
  // CommCare's own view of docs by type, which the migration reads instead of every doc
  await couch('PUT', `/${source}/_design/all_docs`, { views: { by_doc_type: { map: 'function (doc) { if (doc.doc_type) { emit([doc.doc_type, doc._id], null); } }', reduce: '_count' } } });
  const dir = tempDir();
  const stateDir = join(dir, 'state');
  const migrationId = `m-${source.slice(-6)}`;
  const input = (overrides: Record<string, unknown> = {}) => ({
    migrationId,
    source: { connection: 'main', database: source, docTypeView: 'all_docs/by_doc_type' },
    target: { connection: 'main', database: target },
    docTypes: WANTED,
    page: { docs: 100 },
    topOff: { quietSeconds: 1, pollSeconds: 1, maxSeqLag: 10 },
    flags: { cutover: { USERS_GROUPS_DB: target } },
    cleanup: { mode: 'delete', batchDocs: 50 },
    ...overrides,
  });
  return {
    source,
    target,
    stateDir,
    migrationId,
    env: { COUCH_URL: couchUrl() },
    input,
    inputFile: (overrides) => writeJson(dir, `input-${Math.random().toString(36).slice(2)}.json`, input(overrides)),
    flags: () => (existsSync(join(stateDir, 'flags.json')) ? JSON.parse(readFileSync(join(stateDir, 'flags.json'), 'utf8')) : {}),
  };
}

/** Ids and winning revs of the docs of the wanted types (twins included) in a database. */
export async function wantedRevisions(db: string): Promise<Record<string, string>> {
  const r = await couch<{ rows: { id: string; value: { rev: string }; doc: { doc_type?: string } }[] }>('GET', `/${db}/_all_docs?include_docs=true`);
  const wanted = new Set(WANTED.flatMap((t) => [t, `${t}-Deleted`]));
  return Object.fromEntries(r.body.rows.filter((x) => wanted.has(x.doc.doc_type ?? '')).map((x) => [x.id, x.value.rev]));
}
