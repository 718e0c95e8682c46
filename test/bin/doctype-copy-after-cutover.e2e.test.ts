import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runFerry, startFerry } from '../helpers/cli.ts';
import { bulk, couch } from '../helpers/couch.ts';
import { docScenario, wantedRevisions } from '../helpers/doc-scenario.ts';

type Doc = Record<string, unknown> & { _id: string; _rev: string };

/**
 * After the cut-over flags flip, updated web servers write user docs to the new database while a
 * few late servers still write the old one. ferry tops off the late writes and never discards the
 * application's own.
 */
describe('doctype-copy after the cut-over: the new database belongs to the application', () => {
  it('keeps target edits and deletions, tops off late source edits, keeps both sides of a doc edited in both, and reports what it left', async () => {
    const sc = await docScenario({ docs: 200 });
    const get = async (db: string, id: string) => (await couch<Doc>('GET', `/${db}/${id}`)).body;
    const running = startFerry(['local', 'doctype-copy', '--input', sc.inputFile(), '--state-dir', sc.stateDir, '--approve', 'cutover'], sc.env);
    await running.waitFor(/waiting for approval "cleanup"/);
    const [onlyTarget, onlySource, both, deletedThenEdited, deletedOnly] = Object.keys(await wantedRevisions(sc.source)).filter((id) => id.startsWith('d'));
    // the application, reading USERS_GROUPS_DB, edits and deletes in the new database
    await bulk(sc.target, [{ ...(await get(sc.target, onlyTarget!)), note: 'app, new database' }]);
    await bulk(sc.target, [{ ...(await get(sc.target, both!)), note: 'app, new database' }]);
    await bulk(sc.target, [{ ...(await get(sc.target, deletedThenEdited!)), _deleted: true }]);
    await bulk(sc.target, [{ ...(await get(sc.target, deletedOnly!)), _deleted: true }]);
    // a late server, still on the old setting, edits the old one
    await bulk(sc.source, [{ ...(await get(sc.source, onlySource!)), note: 'late server, old database' }]);
    await bulk(sc.source, [{ ...(await get(sc.source, both!)), note: 'late server, old database' }]);
    await bulk(sc.source, [{ ...(await get(sc.source, deletedThenEdited!)), note: 'late server, old database' }]);
    // the top-off carries the late write over while the cleanup approval waits
    const deadline = Date.now() + 20_000;
    while ((await get(sc.target, onlySource!)).note !== 'late server, old database') {
      expect(Date.now(), running.stderr()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 200));
    }
    await new Promise((r) => setTimeout(r, 1500));
    expect((await runFerry(['approve', sc.migrationId, '--step', 'cleanup', '--state-dir', sc.stateDir])).code).toBe(0);
    const run = await running.done;
    expect(run.code, run.stderr).toBe(0);

    expect((await get(sc.target, onlyTarget!)).note).toBe('app, new database');
    expect((await get(sc.target, onlySource!)).note).toBe('late server, old database');
    // edited in both: the application's edit stays the winner and nothing of it is lost
    const bothInTarget = (await couch<Doc & { _conflicts?: string[] }>('GET', `/${sc.target}/${both}?conflicts=true`)).body;
    expect(bothInTarget.note).toBe('app, new database');
    expect(bothInTarget._conflicts).toBeUndefined();
    // deleted by the application: stays deleted, whatever the late server did
    expect((await couch('GET', `/${sc.target}/${deletedThenEdited}`)).status).toBe(404);
    expect((await couch('GET', `/${sc.target}/${deletedOnly}`)).status).toBe(404);
    // the late edits that could not be carried over are kept in the old database and named
    expect((await get(sc.source, both!)).note).toBe('late server, old database');
    expect((await get(sc.source, deletedThenEdited!)).note).toBe('late server, old database');
    expect((await couch('GET', `/${sc.source}/${onlyTarget}`)).status).toBe(404);
    expect((await couch('GET', `/${sc.source}/${deletedOnly}`)).status).toBe(404);
    const diverged = (run.last!.editedInBoth as { id: string }[]).map((d) => d.id).sort();
    expect(diverged).toEqual([both, deletedThenEdited].sort());
    expect(run.last).toMatchObject({ docsLeftInSource: 2 });
    expect(run.stderr).toMatch(/left in the source: 2 docs edited in both databases after the cut-over/);
    // and ferry stats names them
    const stats = await runFerry(['stats', '--input', sc.inputFile()], sc.env);
    expect(stats.stdout).toMatch(new RegExp(`edited in both after the cut-over.*${both}`, 's'));
  });

  it('carries over what a late server wrote to the old database just before the cleanup approval, deletions too, before deleting anything', async () => {
    const sc = await docScenario({ docs: 100 });
    const get = async (db: string, id: string) => (await couch<Doc>('GET', `/${db}/${id}`)).body;
    // the top-off polls every 8 s: what follows lands between two of its polls
    const file = sc.inputFile({ topOff: { quietSeconds: 1, pollSeconds: 8 }, cleanup: { mode: 'none' } });
    const running = startFerry(['local', 'doctype-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'cutover'], sc.env);
    await running.waitFor(/waiting for approval "cleanup"/);
    await running.waitFor(/caught up; topping off until the cleanup begins/);
    const [deleted, edited] = Object.keys(await wantedRevisions(sc.source)).filter((id) => id.startsWith('d'));
    await bulk(sc.source, [{ ...(await get(sc.source, deleted!)), _deleted: true }]);
    await bulk(sc.source, [{ ...(await get(sc.source, edited!)), note: 'late server, old database' }]);
    expect((await runFerry(['approve', sc.migrationId, '--step', 'cleanup', '--state-dir', sc.stateDir])).code).toBe(0);
    const run = await running.done;
    expect(run.code, run.stderr).toBe(0);
    expect((await couch('GET', `/${sc.target}/${deleted}`)).status).toBe(404);
    expect((await get(sc.target, edited!)).note).toBe('late server, old database');
  });

  it('asks for the cut-over once through a long wait: the top-off runs on in fresh executions, the request and its age stay', async () => {
    const sc = await docScenario({ docs: 60 });
    const get = async (db: string, id: string) => (await couch<Doc>('GET', `/${db}/${id}`)).body;
    // each top-off execution ends after 2 loops, as one on AWS does after 1,000
    const file = sc.inputFile({ execution: { maxLoopIterations: 2 }, topOff: { quietSeconds: 1, pollSeconds: 1 } });
    const running = startFerry(['local', 'doctype-copy', '--input', file, '--state-dir', sc.stateDir], sc.env);
    await running.waitFor(/waiting for approval "cutover"/);
    const record = join(sc.stateDir, 'approvals', `${sc.migrationId}.cutover.json`);
    const firstAsked = JSON.parse(await readFile(record, 'utf8')) as { requestedAt: string; token: string };
    const startedTopOffs = () => running.stderr().match(/RunTopOff: started execution/g)?.length ?? 0;
    const deadline = Date.now() + 30_000;
    while (startedTopOffs() < 4) {
      expect(Date.now(), running.stderr()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 200));
    }
    // a late write still reaches the new database after several hand-overs of the top-off
    const [late] = Object.keys(await wantedRevisions(sc.source)).filter((id) => id.startsWith('d'));
    await bulk(sc.source, [{ ...(await get(sc.source, late!)), note: 'written during the wait' }]);
    while ((await get(sc.target, late!)).note !== 'written during the wait') {
      expect(Date.now(), running.stderr()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(running.stderr().match(/waiting for approval "cutover"/g)).toHaveLength(1);
    expect(JSON.parse(await readFile(record, 'utf8'))).toMatchObject(firstAsked);
    expect((await runFerry(['approve', sc.migrationId, '--step', 'cutover', '--state-dir', sc.stateDir])).code).toBe(0);
    await running.waitFor(/waiting for approval "cleanup"/);
    expect((await runFerry(['approve', sc.migrationId, '--step', 'cleanup', '--state-dir', sc.stateDir])).code).toBe(0);
    const run = await running.done;
    expect(run.code, run.stderr).toBe(0);
    expect((await get(sc.target, late!)).note).toBe('written during the wait');
  });
});
