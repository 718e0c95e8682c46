/**
 * doctype-copy benchmark: ferry's initial copy (history preserved) against PouchDB's replicator
 * with a filter, on the same PouchDB Server in the same run. 50,000 docs, half of the wanted
 * types. Uses COUCH_URL when set, else starts an in-memory PouchDB Server. BENCH_DOCS overrides.
 */
import '../bin/cli/polyfill.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import PouchDB from 'pouchdb-core';
import HttpAdapter from 'pouchdb-adapter-http';
import Replication from 'pouchdb-replication';
import { startPouchDbServer } from '../bin/cli/embedded-couch.ts';
import { runLocal } from '../bin/cli/local-runner.ts';

PouchDB.plugin(HttpAdapter).plugin(Replication);

const DOCS = Number(process.env.BENCH_DOCS ?? 50_000);
const WANTED = ['CommCareUser', 'WebUser', 'Group'];
const TYPES = ['CommCareUser', 'WebUser', 'Group', 'CommCareUser-Deleted', 'CommCareCase', 'XFormInstance', 'CommCareCase', 'XFormInstance'];
const wantedSet = new Set(WANTED.flatMap((t) => [t, `${t}-Deleted`]));

async function call(url: string, method: string, body?: unknown): Promise<unknown> {
  const res = await fetch(url, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function main() {
  const embedded = process.env.COUCH_URL ? null : await startPouchDbServer();
  const url = process.env.COUCH_URL ?? embedded!.url;
  try {
    await call(`${url}/bench_source`, 'DELETE').catch(() => undefined);
    await call(`${url}/bench_source`, 'PUT');
    process.stderr.write(`bench: seeding ${DOCS.toLocaleString('en-US')} docs, ${Math.round((100 * TYPES.filter((t) => wantedSet.has(t)).length) / TYPES.length)}% of the wanted types…\n`);
    for (let i = 0; i < DOCS; i += 5000) {
      const docs = Array.from({ length: Math.min(5000, DOCS - i) }, (_, k) => {
        const n = i + k;
        return { _id: `doc-${String(n).padStart(8, '0')}`, doc_type: TYPES[n % TYPES.length], domain: `domain-${n % 50}`, username: `user${n}@example.org`, profile: 'x'.repeat(400) };
      });
      await call(`${url}/bench_source/_bulk_docs`, 'POST', { docs });
    }
    const expected = Math.round((DOCS * TYPES.filter((t) => wantedSet.has(t)).length) / TYPES.length);
    const docCount = async (db: string) => ((await call(`${url}/${db}`, 'GET')) as { doc_count: number }).doc_count;

    await call(`${url}/bench_replicated`, 'DELETE').catch(() => undefined);
    await call(`${url}/bench_replicated`, 'PUT');
    let start = performance.now();
    await PouchDB.replicate(new PouchDB(`${url}/bench_source`), new PouchDB(`${url}/bench_replicated`), {
      filter: (doc: { doc_type?: string }) => typeof doc.doc_type === 'string' && wantedSet.has(doc.doc_type),
    });
    const replicator = (performance.now() - start) / 1000;
    const replicated = await docCount('bench_replicated');
    process.stderr.write(`bench: PouchDB.replicate with a filter: ${replicator.toFixed(2)} s, ${replicated} docs\n`);

    await call(`${url}/bench_ferry`, 'DELETE').catch(() => undefined);
    await call(`${url}/bench_ferry`, 'PUT');
    start = performance.now();
    const result = await runLocal({
      machine: 'doctype-copy',
      stateDir: mkdtempSync(join(tmpdir(), 'ferry-bench-')),
      approve: 'all',
      env: { ...process.env, COUCH_URL: url },
      say: () => undefined,
      input: {
        migrationId: `bench-${Date.now()}`,
        source: { connection: 'main', database: 'bench_source' },
        target: { connection: 'main', database: 'bench_ferry' },
        docTypes: WANTED,
        topOff: { quietSeconds: 0 },
        cleanup: { mode: 'none' },
      },
    });
    const whole = (performance.now() - start) / 1000;
    if (result.status !== 'SUCCEEDED') throw new Error(`ferry: ${result.error}: ${result.cause}`);
    const phases = (result.output as { phases: Record<string, string> }).phases;
    const copy = (Date.parse(phases['top-off']!) - Date.parse(phases['initial-copy']!)) / 1000;
    const copied = (await docCount('bench_ferry')) - 1; // less ferry's stats design doc
    if (copied !== expected || replicated !== expected) throw new Error(`expected ${expected} docs, ferry copied ${copied}, the replicator ${replicated}`);
    const line = (label: string, seconds: number) => `${label.padEnd(46)} ${seconds.toFixed(2).padStart(7)} s ${Math.round(expected / seconds).toLocaleString('en-US').padStart(8)} docs/s`;
    process.stdout.write(
      [
        `doctype-copy benchmark: ${DOCS.toLocaleString('en-US')} docs, ${expected.toLocaleString('en-US')} of the wanted types, PouchDB Server ${embedded ? '(in-memory, embedded)' : 'at COUCH_URL'}`,
        line('PouchDB.replicate(source, target, { filter })', replicator),
        line('ferry initial copy (revision history kept)', copy),
        `ferry's rate is ${(replicator / copy).toFixed(2)}× the replicator's`,
        `  (ferry whole run incl. preflight, stats view, top-off, assert: ${whole.toFixed(2)} s)`,
      ].join('\n') + '\n',
    );
  } finally {
    await embedded?.stop();
  }
}

await main();
