import { describe, expect, it } from 'vitest';
import { startFerry } from '../helpers/cli.ts';
import { couch } from '../helpers/couch.ts';
import { docScenario } from '../helpers/doc-scenario.ts';

type Doc = Record<string, unknown> & { _id: string; _rev: string };

interface DocOp {
  readonly op: string;
  readonly status: number;
  readonly id: string;
  readonly db: string;
}

/**
 * The application's writes never fail because doctype-copy runs: CommCare keeps writing cases to
 * the main database all along, and its users (the moved types) in whichever database
 * USERS_GROUPS_DB names: the old one before the cut-over, the new one after, while the top-off,
 * the conflict resolution and the cleanup's deletions run. Each write is one request, read then
 * written with the revision it read, never retried; a 409 is an error the user would see.
 */
describe('ferry local doctype-copy under an application writing docs', () => {
  it("fails none of the application's writes through the copy, the cut-over and the cleanup, and keeps every one", async () => {
    const sc = await docScenario({ docs: 3000 });
    const flag = `/ferry/${sc.migrationId}/flags/USERS_GROUPS_DB`;
    const ops: DocOp[] = [];
    const mine = new Map<string, { db: string; n: number } | null>();
    let running = true;
    const app = (async () => {
      for (let i = 0; running; i++) {
        const home = sc.flags()[flag] === sc.target ? sc.target : sc.source;
        const existing = [...mine].filter(([, v]) => v?.db === home).map(([id]) => id);
        let op: string;
        let id: string;
        let res: { status: number };
        if (i % 4 === 3) {
          // a case: another doc type, always in the main database
          [op, id] = ['case', `case-${i}`];
          res = await couch('PUT', `/${sc.source}/${id}`, { doc_type: 'CommCareCase', n: i });
        } else if (i % 4 === 0 || existing.length === 0) {
          [op, id] = ['create', `user-${i}`];
          res = await couch('PUT', `/${home}/${id}`, { doc_type: 'CommCareUser', n: i });
          if (res.status < 300) mine.set(id, { db: home, n: i });
        } else {
          id = existing[i % existing.length]!;
          const current = (await couch<Doc>('GET', `/${home}/${id}`)).body;
          if (i % 4 === 1) {
            op = 'update';
            res = await couch('PUT', `/${home}/${id}`, { ...current, n: i });
            if (res.status < 300) mine.set(id, { db: home, n: i });
          } else {
            op = 'delete';
            res = await couch('DELETE', `/${home}/${id}?rev=${current._rev}`);
            if (res.status < 300) mine.set(id, null);
          }
        }
        ops.push({ op, status: res.status, id, db: op === 'case' ? sc.source : home });
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const run = await startFerry(['local', 'doctype-copy', '--input', sc.inputFile({ page: { docs: 200 }, cleanup: { mode: 'delete', batchDocs: 100 } }), '--state-dir', sc.stateDir, '--approve', 'all'], sc.env).done;
    running = false;
    await app;
    expect(run.code, run.stderr).toBe(0);
    expect(ops.filter((o) => o.status >= 300).map((o) => `${o.op} ${o.id}: ${o.status}`)).toEqual([]);
    expect(ops.length).toBeGreaterThan(50);
    // users were written in the old database before the cut-over and in the new one after it
    for (const db of [sc.source, sc.target]) expect(ops.filter((o) => o.op !== 'case' && o.db === db).length, db).toBeGreaterThan(5);
    // every user doc the application wrote is in the new database as it left it (created in the old one before the cut-over, moved)
    for (const [id, last] of mine) {
      const there = await couch<Doc>('GET', `/${sc.target}/${id}`);
      if (last === null) expect(there.status, id).toBe(404);
      else expect(there.body.n, id).toBe(last.n);
    }
  }, 300_000);
});
