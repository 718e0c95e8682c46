/**
 * doctype-copy revert benchmark: `ferry revert` carrying the application's writes in the new
 * database back to the old one, against PouchDB's replicator carrying the same changes (the
 * target's feed since the cut-over, filtered to the migrated types) into a copy of the old one
 * taken at the cut-over, on the same PouchDB Server in the same run. BENCH_REVERT_DOCS docs in
 * the source (default 20,000, half of the wanted types), BENCH_REVERT_EDITS of them edited by the
 * application after the cut-over (default 5,000).
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
import { LocalApprovalStore } from '../lambdas/adapters/approvals.ts';

PouchDB.plugin(HttpAdapter).plugin(Replication);

const DOCS = Number(process.env.BENCH_REVERT_DOCS ?? 20_000);
const EDITS = Number(process.env.BENCH_REVERT_EDITS ?? 5_000);
const WANTED = ['CommCareUser', 'WebUser'];
const TYPES = ['CommCareUser', 'WebUser', 'CommCareCase', 'XFormInstance'];
const wantedSet = new Set(WANTED.flatMap((t) => [t, `${t}-Deleted`]));

async function call<T = unknown>(url: string, method: string, body?: unknown): Promise<T> {
  const res = await fetch(url, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${await res.text()}`);
  return res.json() as Promise<T>;
}

async function main() {
  const embedded = process.env.COUCH_URL ? null : await startPouchDbServer();
  const url = process.env.COUCH_URL ?? embedded!.url;
  try {
    for (const db of ['bench_rv_source', 'bench_rv_target', 'bench_rv_baseline']) {
      await call(`${url}/${db}`, 'DELETE').catch(() => undefined);
      await call(`${url}/${db}`, 'PUT');
    }
    process.stderr.write(`bench: seeding ${DOCS.toLocaleString('en-US')} docs…\n`);
    for (let i = 0; i < DOCS; i += 5000) {
      const docs = Array.from({ length: Math.min(5000, DOCS - i) }, (_, k) => ({ _id: `doc-${String(i + k).padStart(8, '0')}`, doc_type: TYPES[(i + k) % TYPES.length], profile: 'x'.repeat(400) }));
      await call(`${url}/bench_rv_source/_bulk_docs`, 'POST', { docs });
    }
    const stateDir = mkdtempSync(join(tmpdir(), 'ferry-bench-revert-'));
    const migrationId = `bench-revert-${Date.now()}`;
    let revertAskedAt = 0;
    let onCleanupWait: () => void = () => undefined;
    const waiting = new Promise<void>((resolve) => (onCleanupWait = resolve));
    const run = runLocal({
      machine: 'doctype-copy',
      stateDir,
      approve: ['cutover'],
      env: { ...process.env, COUCH_URL: url },
      say: (line) => void (/waiting for approval "cleanup"/.test(line) && onCleanupWait()),
      input: {
        migrationId,
        source: { connection: 'main', database: 'bench_rv_source' },
        target: { connection: 'main', database: 'bench_rv_target' },
        docTypes: WANTED,
        topOff: { quietSeconds: 1, pollSeconds: 1 },
        flags: { cutover: { USERS_GROUPS_DB: 'bench_rv_target' } },
        cleanup: { mode: 'delete' },
      },
    });
    await waiting;
    // the replicator's starting point: the old database as it was at the cut-over, the migrated types only
    const seqAtCutover = (await call<{ update_seq: number | string }>(`${url}/bench_rv_target`, 'GET')).update_seq;
    await PouchDB.replicate(new PouchDB(`${url}/bench_rv_source`), new PouchDB(`${url}/bench_rv_baseline`), { filter: (d: { doc_type?: string }) => typeof d.doc_type === 'string' && wantedSet.has(d.doc_type) });
    // the application edits docs in the new database
    const rows = (await call<{ rows: { id: string; doc: Record<string, unknown> }[] }>(`${url}/bench_rv_target/_all_docs?include_docs=true&limit=${EDITS}`, 'GET')).rows.filter((r) => !r.id.startsWith('_'));
    for (let i = 0; i < rows.length; i += 1000) {
      await call(`${url}/bench_rv_target/_bulk_docs`, 'POST', { docs: rows.slice(i, i + 1000).map((r) => ({ ...r.doc, note: 'edited after the cut-over' })) });
    }
    revertAskedAt = performance.now();
    const store = new LocalApprovalStore(stateDir);
    if (!(await store.decide(migrationId, 'cleanup', { approved: false, revert: true, by: 'bench', reason: 'benchmark' }))) throw new Error('no cleanup approval was pending');
    const result = await run;
    const ferry = (performance.now() - revertAskedAt) / 1000;
    if (result.status !== 'SUCCEEDED' || (result.output as { outcome?: string }).outcome !== 'reverted') throw new Error(`ferry: ${JSON.stringify(result).slice(0, 500)}`);
    const start = performance.now();
    await PouchDB.replicate(new PouchDB(`${url}/bench_rv_target`), new PouchDB(`${url}/bench_rv_baseline`), { since: seqAtCutover, filter: (d: { doc_type?: string }) => typeof d.doc_type === 'string' && wantedSet.has(d.doc_type) });
    const replicator = (performance.now() - start) / 1000;
    // the revert's fixed waits: the input's topOff.quietSeconds after the flags go back, and a poll
    const quiet = 1 + 1;
    process.stdout.write(
      [
        `doctype-copy revert benchmark: ${DOCS.toLocaleString('en-US')} docs, ${rows.length.toLocaleString('en-US')} edited in the new database after the cut-over, PouchDB Server ${embedded ? '(in-memory, embedded)' : 'at COUCH_URL'}`,
        `PouchDB.replicate(target, copy of the source, { since: cut-over, filter })   ${replicator.toFixed(2).padStart(7)} s`,
        `ferry revert, asked to reverted (flags back, ${quiet} s of quiet, verified)    ${ferry.toFixed(2).padStart(7)} s`,
        `ferry's revert takes ${(ferry / replicator).toFixed(2)}× the replicator's time (of which about ${quiet} s wait for quiet and the next poll, by the input's topOff)`,
      ].join('\n') + '\n',
    );
  } finally {
    await embedded?.stop();
  }
}

await main();
