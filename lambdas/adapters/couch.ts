import nano, { type ServerScope } from 'nano';
import { DatabaseError, TransientError, WriteConflict } from '../core/errors.ts';
import type { AllDocsRow, ChangeRow, CouchConnector, CouchDatabase, CouchDoc } from '../core/ports/couch.ts';
import { envNameFor } from './mysql2.ts';

export const DEFAULT_COUCH_URL = 'http://127.0.0.1:5984';

export function resolveCouchUrl(name: string, env: NodeJS.ProcessEnv = process.env): { url: string; from: string } {
  const specific = envNameFor('COUCH', name);
  if (env[specific]) return { url: env[specific]!, from: specific };
  if (env.COUCH_URL) return { url: env.COUCH_URL, from: 'COUCH_URL' };
  return { url: DEFAULT_COUCH_URL, from: `the default ${DEFAULT_COUCH_URL}` };
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return '(unparseable URL)';
  }
}

/** HTTP 5xx, 429, 408 and dropped sockets can pass on a retry; 409 is a conflict; other 4xx cannot. */
export function couchError(err: unknown, what: string): Error {
  const e = err as { statusCode?: number; error?: string; reason?: string; message?: string; description?: string };
  const status = e.statusCode;
  const detail = `${what}: ${status ? `HTTP ${status} ` : ''}${e.error ?? ''}${e.reason ? `: ${e.reason}` : ''}${!status ? (e.message ?? String(err)) : ''}`.trim();
  if (!status || status >= 500 || status === 429 || status === 408) return new TransientError(detail, { cause: err });
  if (status === 409) return new WriteConflict(detail, { cause: err });
  return new DatabaseError(detail, { cause: err });
}

class NanoDatabase implements CouchDatabase {
  constructor(private readonly server: ServerScope, readonly connection: string, readonly name: string, readonly where: string) {}

  private async call<T>(what: string, opts: Record<string, unknown>): Promise<T> {
    try {
      return (await this.server.relax({ db: this.name, ...opts })) as T;
    } catch (err) {
      throw couchError(err, `${this.connection}/${this.name} ${what}`);
    }
  }

  async info() {
    try {
      const r = (await this.server.relax({ db: this.name })) as { update_seq: string | number; doc_count: number };
      return { updateSeq: String(r.update_seq), docCount: r.doc_count };
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return null;
      throw couchError(err, `${this.connection}/${this.name} info`);
    }
  }

  async create() {
    try {
      await this.server.relax({ db: this.name, method: 'PUT' });
      return true;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 412) return false;
      throw couchError(err, `${this.connection}/${this.name} create`);
    }
  }

  async allDocs(qs: Record<string, unknown>, keys?: readonly string[]) {
    const r = await this.call<{ rows: AllDocsRow[] }>('_all_docs', keys ? { path: '_all_docs', method: 'POST', qs, body: { keys } } : { path: '_all_docs', qs });
    return r.rows;
  }

  async changes(since: string, limit: number) {
    const r = await this.call<{ results: { id: string; seq: string | number; changes: { rev: string }[]; deleted?: boolean; doc?: CouchDoc }[]; last_seq: string | number }>(
      '_changes',
      { path: '_changes', qs: { since, limit, style: 'all_docs', include_docs: true } },
    );
    return { results: r.results.map((c) => ({ ...c, seq: String(c.seq) })), lastSeq: String(r.last_seq) };
  }

  async bulkGet(items: readonly { id: string; rev: string }[]) {
    if (items.length === 0) return { docs: [], missing: [] };
    const r = await this.call<{ results: { id: string; docs: { ok?: CouchDoc; error?: { id?: string; rev?: string; error?: string; reason?: string } }[] }[] }>('_bulk_get', {
      path: '_bulk_get',
      method: 'POST',
      qs: { revs: true, attachments: true },
      body: { docs: items },
    });
    const docs: CouchDoc[] = [];
    const errors = new Map<string, string>();
    for (const res of r.results) {
      for (const d of res.docs) {
        if (d.ok) docs.push(d.ok);
        else errors.set(res.id, `${d.error?.error ?? 'error'}${d.error?.reason ? `: ${d.error.reason}` : ''}`);
      }
    }
    // What came back is matched to what was asked for by id and rev: an answer may carry no rev of its own.
    const got = new Set(docs.map((d) => `${d._id}\0${d._rev}`));
    const missing = items.filter((i) => !got.has(`${i.id}\0${i.rev}`)).map((i) => ({ ...i, error: errors.get(i.id) ?? 'not returned' }));
    return { docs, missing };
  }

  async writeRevisions(docs: readonly CouchDoc[]) {
    if (docs.length === 0) return;
    const r = await this.call<{ id: string; error?: string; reason?: string }[]>('_bulk_docs', { path: '_bulk_docs', method: 'POST', body: { docs, new_edits: false } });
    const failed = r.filter((x) => x.error);
    if (failed.length) throw new DatabaseError(`${this.connection}/${this.name} refused ${failed.length} revisions, first ${failed[0]!.id}: ${failed[0]!.error} ${failed[0]!.reason ?? ''}`);
  }

  async bulkDocs(docs: readonly Record<string, unknown>[]) {
    if (docs.length === 0) return;
    const r = await this.call<{ id: string; error?: string; reason?: string }[]>('_bulk_docs', { path: '_bulk_docs', method: 'POST', body: { docs } });
    const failed = r.filter((x) => x.error);
    if (failed.length) {
      const first = failed[0]!;
      const err = new DatabaseError(`${this.connection}/${this.name} refused ${failed.length} writes, first ${first.id}: ${first.error} ${first.reason ?? ''}`);
      if (failed.every((f) => f.error === 'conflict')) throw new TransientError(err.message);
      throw err;
    }
  }

  async revsDiff(revs: Readonly<Record<string, readonly string[]>>) {
    if (Object.keys(revs).length === 0) return {};
    const r = await this.call<Record<string, { missing: string[] }>>('_revs_diff', { path: '_revs_diff', method: 'POST', body: revs });
    return Object.fromEntries(Object.entries(r).map(([id, v]) => [id, v.missing]));
  }

  async view(ddoc: string, view: string, qs: Record<string, unknown>, keys?: readonly unknown[]) {
    const path = `_design/${ddoc}/_view/${view}`;
    return this.call<{ rows: { key: unknown; value: unknown; id?: string; doc?: CouchDoc | null }[] }>(path, keys ? { path, method: 'POST', qs, body: { keys } } : { path, qs });
  }

  async get(id: string, qs: Record<string, unknown> = {}) {
    try {
      return (await this.server.relax({ db: this.name, doc: id, qs })) as CouchDoc;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return null;
      throw couchError(err, `${this.connection}/${this.name} GET ${id}`);
    }
  }

  async put(doc: Record<string, unknown>) {
    const r = await this.call<{ rev: string }>(`PUT ${String(doc._id)}`, { doc: doc._id, method: 'PUT', body: doc });
    return { rev: r.rev };
  }
}

/** Where a CouchDB connection leads: its URL (credentials included, never logged) and which setting chose it. */
export type CouchResolver = (connection: string) => Promise<{ url: string; from: string }>;

export function envCouchResolver(env: NodeJS.ProcessEnv = process.env): CouchResolver {
  return async (connection) => resolveCouchUrl(connection, env);
}

/** Databases by connection name: locally from `COUCH_URL` / `FERRY_COUCH_<NAME>`, on AWS from the stack's config. */
export class NanoConnector implements CouchConnector {
  private readonly servers = new Map<string, { server: ServerScope; where: string }>();
  private readonly resolve: CouchResolver;
  constructor(source: NodeJS.ProcessEnv | CouchResolver = process.env) {
    this.resolve = typeof source === 'function' ? source : envCouchResolver(source);
  }

  async database(connection: string, name: string): Promise<CouchDatabase> {
    let entry = this.servers.get(connection);
    if (!entry) {
      const { url, from } = await this.resolve(connection);
      const server = nano({ url });
      try {
        await server.relax({ path: '' });
      } catch (err) {
        // Down, restarting, or refusing credentials being rotated: a retry may pass.
        throw new TransientError(
          `cannot reach CouchDB connection "${connection}" at ${redactUrl(url)} (from ${from}): ${(err as Error).message}. ` +
            `Start the server or point ${envNameFor('COUCH', connection)} (or COUCH_URL) at it, then run again to resume.`,
          { cause: err },
        );
      }
      entry = { server, where: redactUrl(url) };
      this.servers.set(connection, entry);
    }
    return new NanoDatabase(entry.server, connection, name, entry.where);
  }
}
