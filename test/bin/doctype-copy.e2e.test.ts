import { describe, expect, it } from 'vitest';
import { runFerry, startFerry } from '../helpers/cli.ts';
import { bulk, couch, revisions } from '../helpers/couch.ts';
import { docScenario, wantedRevisions } from '../helpers/doc-scenario.ts';

/** Local runs of statemachines/doctype-copy.asl.json against a real PouchDB Server process. */
describe('ferry local doctype-copy', () => {
  it('moves only the wanted types with their revisions, conflicts and attachments, then empties them from the source', async () => {
    const sc = await docScenario({ docs: 600 });
    const before = await revisions(sc.source);
    const wantedBefore = await wantedRevisions(sc.source);
    const others = Object.fromEntries(Object.entries(before).filter(([id]) => !(id in wantedBefore)));
    const history = (await couch<{ _revisions: unknown }>('GET', `/${sc.source}/edited?revs=true`)).body._revisions;

    const run = await runFerry(['local', 'doctype-copy', '--input', sc.inputFile(), '--state-dir', sc.stateDir, '--approve', 'all'], sc.env);
    expect(run.code, run.stderr).toBe(0);
    // every wanted doc is in the target with the same winning revision; nothing else is
    const target = await revisions(sc.target);
    expect(target).toEqual(wantedBefore);
    expect(Object.keys(wantedBefore).length).toBeGreaterThan(300);
    // the revision history came across, not just the last revision
    expect((await couch<{ _revisions: unknown }>('GET', `/${sc.target}/edited?revs=true`)).body._revisions).toEqual(history);
    // the attachment came across byte for byte
    const photo = await fetch(`${sc.env.COUCH_URL}/${sc.target}/with-attachment/photo.txt`);
    expect(await photo.text()).toBe('a photo of a user');
    // the conflict came across, and the cleanup resolved it to the same winner
    expect(target.conflicted).toBe('1-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb');
    expect((await couch<{ _conflicts?: string[] }>('GET', `/${sc.target}/conflicted?conflicts=true`)).body._conflicts).toBeUndefined();
    // the source keeps every other doc untouched and none of the moved ones, conflict leaves included
    expect(await revisions(sc.source)).toEqual(others);
    expect((await couch('GET', `/${sc.source}/conflicted?open_revs=all`)).body).toEqual(
      expect.arrayContaining([expect.objectContaining({ ok: expect.objectContaining({ _deleted: true }) })]),
    );
    expect(run.last).toMatchObject({ phase: 'done', flags: { USERS_GROUPS_DB: sc.target }, conflictsResolved: 1 });
    const counts = run.last!.countsAtCheck as { docType: string; source: number; target: number }[];
    expect(counts.every((c) => c.source === c.target)).toBe(true);
    expect(counts.find((c) => c.docType === 'CommCareUser-Deleted')!.target).toBeGreaterThan(0);
    expect(Object.values(run.last!.sourceLeft as Record<string, number>).every((n) => n === 0)).toBe(true);
    // nothing of ferry's is left in the application's new database
    expect((await couch<{ rows: unknown[] }>('GET', `/${sc.target}/_all_docs?startkey="_design/"&endkey="_design0"`)).body.rows).toEqual([]);
  });

  it('tops off updates, creations, deletions and type changes made while the cut-over waits, with the same _rev', async () => {
    const sc = await docScenario();
    const running = startFerry(['local', 'doctype-copy', '--input', sc.inputFile(), '--state-dir', sc.stateDir], sc.env);
    await running.waitFor(/waiting for approval "cutover"/);
    const src = await revisions(sc.source);
    const [u1, u2, u3] = Object.keys(await wantedRevisions(sc.source)).filter((id) => id.startsWith('d'));
    const doc = async (id: string) => (await couch<Record<string, unknown>>('GET', `/${sc.source}/${id}`)).body;
    const updated = await bulk(sc.source, [{ ...(await doc(u1!)), note: 'changed during the cut-over' }]);
    const created = await bulk(sc.source, [{ _id: 'new-user', doc_type: 'CommCareUser' }]);
    const deleted = await bulk(sc.source, [{ _id: u2, _rev: src[u2!], _deleted: true }]);
    await bulk(sc.source, [{ ...(await doc(u3!)), doc_type: 'Retired' }]);
    // the top-off keeps running beside the pending approval
    const deadline = Date.now() + 20_000;
    for (;;) {
      const t = await couch<{ rows: { id: string; value: { rev: string; deleted?: boolean } }[] }>('POST', `/${sc.target}/_all_docs`, { keys: [u1, 'new-user', u2] });
      const [a, b, c] = t.body.rows;
      if (a?.value?.rev === updated[0]!.rev && b?.value?.rev === created[0]!.rev && c?.value?.deleted && c.value.rev === deleted[0]!.rev) break;
      expect(Date.now(), running.stderr()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect((await runFerry(['approve', sc.migrationId, '--step', 'cutover', '--state-dir', sc.stateDir])).code).toBe(0);
    await running.waitFor(/waiting for approval "cleanup"/);
    expect(sc.flags()[`/ferry/${sc.migrationId}/flags/USERS_GROUPS_DB`]).toBe(sc.target);
    expect((await runFerry(['approve', sc.migrationId, '--step', 'cleanup', '--state-dir', sc.stateDir])).code).toBe(0);
    const run = await running.done;
    expect(run.code, run.stderr).toBe(0);
    expect(run.last!.movedOut).toEqual([{ id: u3, docType: 'Retired' }]);
    expect(run.last!.tombstonesCopied).toBeGreaterThanOrEqual(1);
    expect(await wantedRevisions(sc.source)).toEqual({});
  });

  it('resumes after SIGKILL during the initial copy and ends as an uninterrupted run would', async () => {
    const sc = await docScenario({ docs: 6000 });
    const wantedBefore = await wantedRevisions(sc.source);
    const file = sc.inputFile({ page: { docs: 50 }, cleanup: { mode: 'none' } });
    const first = startFerry(['local', 'doctype-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all'], sc.env);
    for (;;) {
      const cp = await couch<{ phase?: string; state?: { docsCopied: number } }>('GET', `/${sc.target}/_local/ferry-${sc.migrationId}`);
      if (cp.body.phase === 'initial-copy' && (cp.body.state?.docsCopied ?? 0) > 300) break;
      expect(first.child.exitCode, first.stderr()).toBeNull();
      await new Promise((r) => setTimeout(r, 5));
    }
    first.child.kill('SIGKILL');
    expect((await first.done).signal).toBe('SIGKILL');
    const partial = Object.keys(await revisions(sc.target)).length;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(Object.keys(wantedBefore).length);
    const second = await runFerry(['local', 'doctype-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all'], sc.env);
    expect(second.code, second.stderr).toBe(0);
    expect(await revisions(sc.target)).toEqual(wantedBefore);
    expect(await wantedRevisions(sc.source)).toEqual(wantedBefore);
  });

  it('a rejected cutover fails the execution, sets no flag and deletes nothing', async () => {
    const sc = await docScenario();
    const before = await revisions(sc.source);
    const running = startFerry(['local', 'doctype-copy', '--input', sc.inputFile(), '--state-dir', sc.stateDir, '--approve', 'cleanup'], sc.env);
    await running.waitFor(/waiting for approval "cutover"/);
    expect((await runFerry(['approve', sc.migrationId, '--step', 'cutover', '--reject', '--reason', 'not during the release', '--state-dir', sc.stateDir])).code).toBe(0);
    const run = await running.done;
    expect(run.code).toBe(1);
    expect(run.last).toMatchObject({ error: 'ApprovalRejected', cause: expect.stringContaining('not during the release') });
    expect(sc.flags()).toEqual({});
    expect(await revisions(sc.source)).toEqual(before);
  });

  it('ferry stats prints the per-type table for both sides', async () => {
    const sc = await docScenario();
    const run = await runFerry(['stats', '--input', sc.inputFile()], sc.env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/CommCareUser\s+\d+\s+0\s+≠/);
    expect(run.stdout).toMatch(/Group-Deleted\s+0\s+0/);
  });
});

describe('ferry local doctype-copy over many executions', () => {
  it('hands the loops before the approval over to fresh executions, asks for the cut-over once, and finishes once approved', async () => {
    const sc = await docScenario({ docs: 60 });
    // the top-off before the cut-over polls at least three times before it is quiet: more loops than one execution may run
    const file = sc.inputFile({ execution: { maxLoopIterations: 2 }, topOff: { quietSeconds: 3, pollSeconds: 1, maxSeqLag: 10 } });
    const running = startFerry(['local', 'doctype-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'cleanup'], sc.env);
    await running.waitFor(/continuing as a new execution[\s\S]*waiting for approval "cutover"/, 60_000);
    await new Promise((r) => setTimeout(r, 3000));
    expect((await runFerry(['approve', sc.migrationId, '--step', 'cutover', '--state-dir', sc.stateDir])).code).toBe(0);
    const run = await running.done;
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr.match(/waiting for approval "cutover"/g)).toHaveLength(1);
    expect(await wantedRevisions(sc.source)).toEqual({});
    expect(run.stderr).toMatch(/SUCCEEDED over \d+ executions/);
  });
});

describe('ferry local doctype-copy killed during the cleanup', () => {
  it('resumes the cleanup without a top-off, leaving none of the moved docs in the source and all of them in the target', async () => {
    const sc = await docScenario({ docs: 900 });
    const before = await revisions(sc.source);
    const wantedBefore = await wantedRevisions(sc.source);
    const file = sc.inputFile({ cleanup: { mode: 'delete', batchDocs: 10 } });
    const first = startFerry(['local', 'doctype-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all'], sc.env);
    for (;;) {
      const cp = await couch<{ phase?: string; state?: { docsDeleted: number } }>('GET', `/${sc.target}/_local/ferry-${sc.migrationId}`);
      if (cp.body.phase === 'cleanup' && (cp.body.state?.docsDeleted ?? 0) > 50) break;
      expect(first.child.exitCode, first.stderr()).toBeNull();
      await new Promise((r) => setTimeout(r, 5));
    }
    first.child.kill('SIGKILL');
    await first.done;
    const second = await runFerry(['local', 'doctype-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all'], sc.env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).not.toMatch(/\[top-off\]/);
    expect(await wantedRevisions(sc.source)).toEqual({});
    const others = Object.fromEntries(Object.entries(before).filter(([id]) => !(id in wantedBefore)));
    expect(await revisions(sc.source)).toEqual(others);
    expect(await revisions(sc.target)).toEqual(wantedBefore);
  });
});
