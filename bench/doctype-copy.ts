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

/** Seconds spent in each phase, from the checkpoint's phase start times. */
function phaseTimes(phases: Record<string, string>): string {
  const order = Object.entries(phases).sort((a, b) => Date.parse(a[1]) - Date.parse(b[1]));
  return order.slice(0, -1).map(([name, at], i) => `${name} ${((Date.parse(order[i + 1]![1]) - Date.parse(at)) / 1000).toFixed(2)} s`).join(', ');
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
    // CommCare's own view of docs by type, built as it is in production before any migration
    await call(`${url}/bench_source/_design/all_docs`, 'PUT', { views: { by_doc_type: { map: 'function (doc) { if (doc.doc_type) { emit([doc.doc_type, doc._id], null); } }', reduce: '_count' } } });
    await call(`${url}/bench_source/_design/all_docs/_view/by_doc_type?limit=1`, 'GET');
    const expected = Math.round((DOCS * TYPES.filter((t) => wantedSet.has(t)).length) / TYPES.length);
    const docCount = async (db: string) => ((await call(`${url}/${db}`, 'GET')) as { doc_count: number }).doc_count;

    await call(`${url}/bench_replicated`, 'DELETE').catch(() => undefined);
    await call(`${url}/bench_replicated`, 'PUT');
    let start = performance.now();
    await PouchDB.replicate(new PouchDB(`${url}/bench_source`), new PouchDB(`${url}/bench_replicated`), {
      filter: (doc: { _id: string; doc_type?: string }) => typeof doc.doc_type === 'string' && wantedSet.has(doc.doc_type) && !doc._id.startsWith('_design/'),
    });
    const replicator = (performance.now() - start) / 1000;
    const replicated = await docCount('bench_replicated');
    process.stderr.write(`bench: PouchDB.replicate with a filter: ${replicator.toFixed(2)} s, ${replicated} docs\n`);

    await call(`${url}/bench_ferry`, 'DELETE').catch(() => undefined);
    await call(`${url}/bench_ferry`, 'PUT');
    start = performance.now();
    const startedAt = Date.now();
    const result = await runLocal({
      machine: 'doctype-copy',
      stateDir: mkdtempSync(join(tmpdir(), 'ferry-bench-')),
      approve: 'all',
      env: { ...process.env, COUCH_URL: url },
      // BENCH_VERBOSE=1 prints what the run says, with the seconds since it started
      say: (line) => void (process.env.BENCH_VERBOSE && process.stderr.write(`${((performance.now() - start) / 1000).toFixed(2)} s ${line}\n`)),
      onProgress: (p) => void (process.env.BENCH_VERBOSE && process.stderr.write(`${((performance.now() - start) / 1000).toFixed(2)} s [${p.phase}] ${p.done} ${p.note}\n`)),
      input: {
        migrationId: `bench-${Date.now()}`,
        source: { connection: 'main', database: 'bench_source', docTypeView: 'all_docs/by_doc_type' },
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
    // what the replicator's time compares with: ferry's until the copy is checked and the cut-over can be approved
    const toApproval = (Date.parse(phases['cutover-approval']!) - startedAt) / 1000;
    const copied = await docCount('bench_ferry'); // ferry's checkpoint is a _local doc, not counted
    if (copied !== expected || replicated !== expected) throw new Error(`expected ${expected} docs, ferry copied ${copied}, the replicator ${replicated}`);
    const line = (label: string, seconds: number) => `${label.padEnd(46)} ${seconds.toFixed(2).padStart(7)} s ${Math.round(expected / seconds).toLocaleString('en-US').padStart(8)} docs/s`;
    process.stdout.write(
      [
        `doctype-copy benchmark: ${DOCS.toLocaleString('en-US')} docs, ${expected.toLocaleString('en-US')} of the wanted types, PouchDB Server ${embedded ? '(in-memory, embedded)' : 'at COUCH_URL'}`,
        line('PouchDB.replicate(source, target, { filter })', replicator),
        line('ferry initial copy (revision history kept)', copy),
        line('ferry to the cut-over approval (copy checked)', toApproval),
        line('ferry whole run (preflight to cleanup, approvals at once)', whole),
        `ferry's initial copy is ${(replicator / copy).toFixed(2)}× the replicator's rate; to the cut-over approval it takes ${(toApproval / replicator).toFixed(2)}× the replicator's time, its whole run ${(whole / replicator).toFixed(2)}×`,
        `  (phases: ${phaseTimes(phases)})`,
      ].join('\n') + '\n',
    );
  } finally {
    await embedded?.stop();
  }
}

await main();
