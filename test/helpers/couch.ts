import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';

export const couchUrl = () => inject('couchUrl');

export async function couch<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${couchUrl()}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as T };
}

export function uniqueDb(role: string): string {
  return `ferry_t_${role}_${process.pid}_${randomBytes(3).toString('hex')}`;
}

export async function createDb(name: string): Promise<void> {
  const r = await couch('PUT', `/${name}`);
  if (r.status !== 201) throw new Error(`cannot create ${name}: ${JSON.stringify(r.body)}`);
}

/** Every doc (not design) with its winning rev and deletion, for "unchanged" and "same _rev" assertions. */
export async function revisions(db: string): Promise<Record<string, string>> {
  const r = await couch<{ rows: { id: string; value: { rev: string } }[] }>('GET', `/${db}/_all_docs`);
  return Object.fromEntries(r.body.rows.filter((x) => !x.id.startsWith('_design/')).map((x) => [x.id, x.value.rev]));
}

export async function bulk(db: string, docs: unknown[], newEdits = true): Promise<{ id: string; rev?: string; error?: string }[]> {
  const r = await couch<{ id: string; rev?: string; error?: string }[]>('POST', `/${db}/_bulk_docs`, newEdits ? { docs } : { docs, new_edits: false });
  return r.body;
}
