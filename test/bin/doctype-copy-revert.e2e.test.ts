import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runFerry, startFerry, type CliResult, type Running } from '../helpers/cli.ts';
import { bulk, couch, revisions } from '../helpers/couch.ts';
import { docScenario, wantedRevisions, type DocScenario } from '../helpers/doc-scenario.ts';

type Doc = Record<string, unknown> & { _id: string; _rev: string };
type AllDocsRow = { id?: string; key: string; value?: { rev: string; deleted?: boolean }; error?: string };

interface AppWrite {
  readonly op: 'create' | 'edit' | 'delete';
  readonly id: string;
  readonly db: string;
  readonly rev: string;
}

/**
 * The application: CommCare web servers writing user docs in whichever database USERS_GROUPS_DB
 * names (the old one until the cut-over flag says otherwise), one request per write, read then
 * written with the revision read. Every write it made is kept, in order, as the reference.
 */
class App {
  readonly writes: AppWrite[] = [];
  private n = 0;
  constructor(private readonly sc: DocScenario, private readonly flag: string) {}

  home(): string {
    return this.sc.flags()[this.flag] === this.sc.target ? this.sc.target : this.sc.source;
  }

  private record(op: AppWrite['op'], id: string, db: string, res: { status: number; body: { rev?: string } }): void {
    expect(res.status, `the application's ${op} of ${id} in ${db}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
    this.writes.push({ op, id, db, rev: res.body.rev! });
  }

  async create(id: string, docType = 'CommCareUser'): Promise<void> {
    const db = this.home();
    this.record('create', id, db, await couch<{ rev?: string }>('PUT', `/${db}/${id}`, { doc_type: docType, n: ++this.n, by: 'app' }));
  }

  async edit(id: string): Promise<void> {
    const db = this.home();
    const current = await couch<Doc>('GET', `/${db}/${id}`);
    expect(current.status, `the application reads ${id} in ${db}`).toBe(200);
    this.record('edit', id, db, await couch<{ rev?: string }>('PUT', `/${db}/${id}`, { ...current.body, n: ++this.n, note: `app edit ${this.n} in ${db}` }));
  }

  async remove(id: string): Promise<void> {
    const db = this.home();
    const current = await couch<Doc>('GET', `/${db}/${id}`);
    expect(current.status, `the application reads ${id} in ${db}`).toBe(200);
    this.record('delete', id, db, await couch<{ rev?: string }>('DELETE', `/${db}/${id}?rev=${current.body._rev}`));
  }

  /** A batch edit (an admin screen saving many users at once): one _bulk_docs request. */
  async editMany(ids: string[]): Promise<void> {
    const db = this.home();
    const read = await couch<{ rows: { id: string; doc: Doc }[] }>('POST', `/${db}/_all_docs?include_docs=true`, { keys: ids });
    const n = ++this.n;
    const written = await bulk(db, read.body.rows.map((r) => ({ ...r.doc, n, note: `app batch edit ${n} in ${db}` })));
    for (const w of written) this.record('edit', w.id, db, { status: w.error ? 409 : 201, body: w });
  }

  ids(): string[] {
    return [...new Set(this.writes.map((w) => w.id))];
  }

  /** What the application last wrote to each doc. */
  last(): Map<string, AppWrite> {
    return new Map(this.writes.map((w) => [w.id, w]));
  }
}

interface CutOver {
  readonly sc: DocScenario;
  readonly flag: string;
  readonly app: App;
  readonly running: Running;
  /** The `ferry local` command, to run it again. */
  readonly args: string[];
  /** Winning revisions of the migrated types' docs in the source before the run. */
  readonly wantedBefore: Record<string, string>;
  /** Every doc of the source (not design) and its winning revision before the run. */
  readonly sourceBefore: Record<string, string>;
  /** Source docs that had conflict leaves before the run. */
  readonly conflictedBefore: Set<string>;
}

async function conflicted(db: string): Promise<Set<string>> {
  const r = await couch<{ rows: { id: string; doc?: { _conflicts?: string[] } }[] }>('GET', `/${db}/_all_docs?include_docs=true&conflicts=true`);
  return new Set(r.body.rows.filter((x) => (x.doc?._conflicts?.length ?? 0) > 0).map((x) => x.id));
}

/**
 * A doctype-copy run with `--approve cutover`, the application writing in the source until the
 * cut-over and in the target after it, up to the pending cleanup approval.
 */
async function cutOver(opts: { docs: number; priorFlag?: string; batchEdits?: number }): Promise<CutOver> {
  const sc = await docScenario({ docs: opts.docs });
  const flag = `/ferry/${sc.migrationId}/flags/USERS_GROUPS_DB`;
  if (opts.priorFlag !== undefined) {
    // the flag as it stood before this migration (FileFlagStore's file)
    mkdirSync(sc.stateDir, { recursive: true });
    writeFileSync(join(sc.stateDir, 'flags.json'), JSON.stringify({ [flag]: opts.priorFlag }, null, 2) + '\n');
  }
  const wantedBefore = await wantedRevisions(sc.source);
  const sourceBefore = await revisions(sc.source);
  const conflictedBefore = await conflicted(sc.source);
  expect(conflictedBefore.has('conflicted')).toBe(true);
  const copied = Object.keys(wantedBefore).filter((id) => id.startsWith('d'));
  const app = new App(sc, flag);
  const args = ['local', 'doctype-copy', '--input', sc.inputFile({ page: { docs: 50 } }), '--state-dir', sc.stateDir, '--approve', 'cutover'];
  const running = startFerry(args, sc.env);

  // before the cut-over: the application works in the old database while the copy runs
  await running.waitFor(/copied \d+ docs/);
  for (const id of ['app-early-1', 'app-early-2', 'app-early-3', 'app-early-4']) await app.create(id);
  await app.create('app-early-group', 'Group');
  await app.edit(copied[0]!);
  await app.edit(copied[1]!);
  await app.edit('edited');
  await app.edit('app-early-1');
  await app.remove(copied[2]!);
  await app.remove('app-early-2');
  const early = app.writes.length;
  expect(app.writes.map((w) => w.db), 'the application wrote before the cut-over').toEqual(Array(early).fill(sc.source));

  await running.waitFor(/waiting for approval "cleanup"/);
  expect(sc.flags()[flag], 'the cut-over flag names the new database').toBe(sc.target);

  // after the cut-over: the application works in the new database
  for (const id of ['app-late-1', 'app-late-2', 'app-late-3']) await app.create(id);
  await app.create('app-late-webuser', 'WebUser');
  await app.edit('app-late-1');
  for (const id of copied.slice(3, 9)) await app.edit(id);
  await app.edit(copied[0]!); // edited in the old database before the cut-over, and in the new one after
  await app.edit(copied[9]!);
  await app.edit(copied[9]!); // two revisions in the new database
  await app.edit('edited');
  await app.edit('with-attachment');
  await app.edit('conflicted');
  await app.edit('app-early-1');
  await app.edit('app-early-3');
  for (const id of copied.slice(10, 13)) await app.remove(id);
  await app.remove('app-early-4');
  await app.create('app-late-gone');
  await app.remove('app-late-gone'); // created and deleted in the new database: the old one never had it
  if (opts.batchEdits) {
    const many = copied.slice(20, 20 + opts.batchEdits);
    for (let i = 0; i < many.length; i += 50) await app.editMany(many.slice(i, i + 50));
  }
  expect(app.writes.slice(early).every((w) => w.db === sc.target), 'the application wrote after the cut-over in the new database').toBe(true);
  expect(running.child.exitCode, running.stderr()).toBeNull();
  return { sc, flag, app, running, args, wantedBefore, sourceBefore, conflictedBefore };
}

function revert(c: CutOver, extra: string[] = ['--reason', 'the new database answers slowly']): Running {
  return startFerry(['revert', c.sc.migrationId, ...extra, '--state-dir', c.sc.stateDir], c.sc.env);
}

/** Winning revision and deletion of each id, as `_all_docs` with keys answers them. */
async function winners(db: string, ids: string[]): Promise<Record<string, { rev?: string; deleted?: boolean; error?: string }>> {
  const r = await couch<{ rows: AllDocsRow[] }>('POST', `/${db}/_all_docs`, { keys: ids });
  return Object.fromEntries(r.body.rows.map((x) => [x.key, x.error ? { error: x.error } : { rev: x.value!.rev, ...(x.value!.deleted ? { deleted: true } : {}) }]));
}

/**
 * The ids whose two sides are compared: the migrated types' docs and every doc the application
 * wrote, but one the application deleted in the old database before the cut-over that the new one
 * never held (deleted before the copy reached it: there is nothing of it to carry either way).
 */
function comparedIds(c: CutOver, inTarget: Record<string, { error?: string }>): string[] {
  const last = c.app.last();
  return Object.keys(inTarget)
    .filter((id) => !(inTarget[id]!.error === 'not_found' && last.get(id)?.op === 'delete' && last.get(id)?.db === c.sc.source))
    .sort();
}

/** A doc the application created and deleted in the new database alone, after the cut-over: no trace of it is carried back. */
function createdAndDeletedInTarget(c: CutOver, id: string): boolean {
  const mine = c.app.writes.filter((w) => w.id === id);
  return mine[0]?.op === 'create' && mine.every((w) => w.db === c.sc.target) && c.app.last().get(id)?.op === 'delete';
}

/** A doc as GET answers it, without its attachments' revpos: which revision first carried an attachment is the writing server's note, not the doc's. */
function withoutRevpos(doc: Doc): Doc {
  const attachments = doc._attachments as Record<string, Record<string, unknown>> | undefined;
  if (!attachments) return doc;
  return { ...doc, _attachments: Object.fromEntries(Object.entries(attachments).map(([name, a]) => [name, Object.fromEntries(Object.entries(a).filter(([k]) => k !== 'revpos'))])) };
}

function expectReverted(run: CliResult): void {
  expect(run.code, run.stderr).toBe(0);
  expect(run.last, run.stdout).toMatchObject({ outcome: 'reverted', phase: 'reverted' });
}

/**
 * The end state of a revert: for every doc of the migrated types and every doc the application
 * wrote, the old database shows what the new one does (winning revision, body, history; a deletion
 * as a deletion), no new conflict, nothing deleted that the application did not delete, and the
 * other types untouched.
 */
async function expectSourceAsTarget(c: CutOver): Promise<void> {
  const { sc, app } = c;
  const ids = comparedIds(c, await winners(sc.target, [...new Set([...Object.keys(c.wantedBefore), ...app.ids()])]));

  // the reference: the new database holds what the application last wrote there
  const inTarget = await winners(sc.target, ids);
  for (const [id, w] of app.last()) {
    if (!ids.includes(id)) continue;
    if (w.op === 'delete') expect(inTarget[id], id).toEqual({ rev: w.rev, deleted: true });
    else expect(inTarget[id], id).toEqual({ rev: w.rev });
  }
  expect(Object.values(inTarget).filter((x) => x.error), 'every doc is in the new database').toEqual([]);

  // winning revision and deletion, every id at once: the old database has the same tombstones, but
  // of a doc the application created and deleted in the new database alone, which leaves no trace
  // in the old one (a tombstone without doc_type does not say it was a doc of the migrated types)
  const onlyInTarget = (id: string) => createdAndDeletedInTarget(c, id);
  const expected = Object.fromEntries(Object.entries(inTarget).map(([id, w]) => [id, onlyInTarget(id) ? { error: 'not_found' } : w]));
  expect(Object.values(expected).filter((w) => w.error).length, 'a doc created and deleted in the new database alone').toBeGreaterThan(0);
  expect(await winners(sc.source, ids)).toEqual(expected);

  // body and history of each
  for (const id of ids.filter((x) => !onlyInTarget(x))) {
    const [s, t] = await Promise.all([couch<Doc>('GET', `/${sc.source}/${id}?revs=true`), couch<Doc>('GET', `/${sc.target}/${id}?revs=true`)]);
    expect({ status: s.status, body: withoutRevpos(s.body) }, id).toEqual({ status: t.status, body: withoutRevpos(t.body) });
    if (inTarget[id]!.deleted) {
      expect((await couch('GET', `/${sc.source}/${id}`)).status, id).toBe(404);
      expect((await couch('GET', `/${sc.target}/${id}`)).status, id).toBe(404);
    }
  }

  // no conflict where there was none: the application's revisions extend the source's own
  const conflictedNow = await conflicted(sc.source);
  expect([...conflictedNow].filter((id) => !c.conflictedBefore.has(id)), 'docs with new conflicts in the source').toEqual([]);
  const leaves = await couch<Doc & { _conflicts?: string[] }>('GET', `/${sc.source}/${c.app.writes.find((w) => w.db === sc.target && w.op === 'edit')!.id}?conflicts=true`);
  expect(leaves.body._conflicts).toBeUndefined();

  // nothing was deleted from the source but what the application deleted
  const deletedByApp = new Set([...app.last()].filter(([, w]) => w.op === 'delete').map(([id]) => id));
  const sourceNow = await revisions(sc.source);
  const gone = Object.keys(c.wantedBefore).filter((id) => !(id in sourceNow));
  expect(gone.sort(), 'docs of the migrated types no longer in the source').toEqual(Object.keys(c.wantedBefore).filter((id) => deletedByApp.has(id)).sort());
  expect(Object.keys(c.wantedBefore).filter((id) => !deletedByApp.has(id)).length).toBeGreaterThan(50);

  // the other types, untouched
  const others = (revs: Record<string, string>) => Object.fromEntries(Object.entries(revs).filter(([id]) => !(id in c.wantedBefore) && !app.ids().includes(id)));
  expect(Object.keys(others(c.sourceBefore)).length).toBeGreaterThan(20);
  expect(others(sourceNow)).toEqual(others(c.sourceBefore));
}

describe('ferry revert of a doctype-copy waiting for its cleanup approval', () => {
  it("carries the application's writes in the new database back to the old one with their revisions, sets USERS_GROUPS_DB back to its value before the cut-over, and deletes nothing", async () => {
    const c = await cutOver({ docs: 300, priorFlag: 'commcarehq' });
    const { sc, flag, running } = c;

    // a revert says why
    const noReason = await revert(c, []).done;
    expect(noReason.code, noReason.stderr).toBe(2);
    expect(noReason.stderr).toMatch(/--reason/);
    expect(noReason.stderr).not.toMatch(/unknown command/);
    await new Promise((r) => setTimeout(r, 1000));
    expect(running.child.exitCode, running.stderr()).toBeNull();
    expect(sc.flags()[flag]).toBe(sc.target);

    // how far the old database lags: what the new one took since the cut-over
    const stats = await runFerry(['stats', '--input', sc.inputFile()], sc.env);
    expect(stats.code, stats.stderr).toBe(0);
    const lag = /old database: (\d+) changes in \S+ since the cut-over/.exec(stats.stdout);
    expect(lag, stats.stdout).not.toBeNull();
    expect(Number(lag![1])).toBeGreaterThanOrEqual(c.app.writes.filter((w) => w.db === sc.target).length);
    // and ferry status says it too
    const status = await runFerry(['status', sc.migrationId, '--state-dir', sc.stateDir], sc.env);
    expect(status.code, status.stderr).toBe(0);
    expect(String(JSON.parse(status.stdout).oldHome), status.stdout).toMatch(/^old database: \d+ changes in \S+ since the cut-over/);

    const taken = await revert(c).done;
    expect(taken.code, taken.stderr).toBe(0);
    const run = await running.done;
    expectReverted(run);
    expect(run.stderr).not.toMatch(/waiting for approval "cleanup"[\s\S]*waiting for approval "cleanup"/);

    // the flag is what it was before the cut-over
    expect(sc.flags()[flag]).toBe('commcarehq');
    await expectSourceAsTarget(c);

    // nothing is pending any more: a second revert finds no cleanup approval to answer
    const again = await revert(c).done;
    expect(again.code, again.stderr).toBe(1);
  }, 240_000);

  it('finishes a revert killed (SIGKILL) while it runs when the same command is run again, with the same end state; a flag not set before the cut-over is removed', async () => {
    const c = await cutOver({ docs: 600, batchEdits: 250 });
    const { sc, flag, running } = c;
    expect(existsSync(join(sc.stateDir, 'flags.json'))).toBe(true);

    // kill the run as soon as it says anything of the revert
    let said = '';
    let killedOn = '';
    running.child.stderr!.on('data', (d: Buffer) => {
      said += d.toString();
      if (!killedOn && /revert/i.test(said)) {
        killedOn = said;
        running.child.kill('SIGKILL');
      }
    });
    const taken = await revert(c).done;
    expect(taken.code, taken.stderr).toBe(0);
    const killed = await running.done;
    expect(killed.signal, `the run ended before it was killed:\n${killed.stderr}`).toBe('SIGKILL');
    expect(killedOn).toMatch(/revert/i);

    // the same command again finishes the revert: it does not ask for the cleanup approval again
    const second = startFerry(c.args, sc.env);
    const asked = second.waitFor(/waiting for approval "cleanup"/, 180_000).then(
      () => 'asked',
      () => 'ended',
    );
    const outcome = await Promise.race([second.done.then(() => 'ended'), asked]);
    expect(outcome, `the second run asked for the cleanup approval again instead of finishing the revert:\n${second.stderr()}`).toBe('ended');
    expectReverted(await second.done);

    expect(flag in sc.flags(), `USERS_GROUPS_DB was not set before the cut-over: ${JSON.stringify(sc.flags())}`).toBe(false);
    await expectSourceAsTarget(c);
  }, 300_000);

  it('lets the same input run again after a revert, from what is there, to the end: the docs end in the new database and leave the old one', async () => {
    const c = await cutOver({ docs: 300 });
    const { sc, flag, running, app } = c;
    const taken = await revert(c).done;
    expect(taken.code, taken.stderr).toBe(0);
    expectReverted(await running.done);

    // the application is back in the old database, and writes there
    expect(app.home()).toBe(sc.source);
    await app.edit('app-late-1');
    await app.create('app-after-revert');
    await app.remove('app-late-2');
    expect(app.writes.slice(-3).every((w) => w.db === sc.source)).toBe(true);

    const ids = comparedIds(c, await winners(sc.target, [...new Set([...Object.keys(c.wantedBefore), ...app.ids()])]));
    const sourceBeforeRerun = await winners(sc.source, ids);
    const rerun = await runFerry(['local', 'doctype-copy', '--input', sc.inputFile({ page: { docs: 50 } }), '--state-dir', sc.stateDir, '--approve', 'all'], sc.env);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.last, rerun.stdout).toMatchObject({ phase: 'done' });
    expect(rerun.last!.outcome).not.toBe('reverted');

    // the new database holds each doc as the old one had it when the run began again (a doc the
    // application created and deleted in the new database alone stays deleted there, and absent in the old)
    const targetNow = await winners(sc.target, ids);
    for (const id of ids.filter((x) => createdAndDeletedInTarget(c, x))) {
      expect({ target: targetNow[id]!.deleted, source: sourceBeforeRerun[id] }, id).toEqual({ target: true, source: { error: 'not_found' } });
      delete targetNow[id];
      delete sourceBeforeRerun[id];
    }
    expect(targetNow).toEqual(sourceBeforeRerun);
    const after = await couch<Doc>('GET', `/${sc.target}/app-after-revert`);
    expect(after.body._rev).toBe(app.last().get('app-after-revert')!.rev);
    // and the old one holds none of the migrated types any more
    expect(await wantedRevisions(sc.source)).toEqual({});
    expect(sc.flags()[flag]).toBe(sc.target);
    const others = Object.fromEntries(Object.entries(c.sourceBefore).filter(([id]) => !(id in c.wantedBefore)));
    const sourceNow = await revisions(sc.source);
    expect(Object.fromEntries(Object.keys(others).map((id) => [id, sourceNow[id]]))).toEqual(others);
  }, 300_000);

  it('exits 1 when no cleanup approval is pending (the run waits for its cut-over), and the run goes on waiting', async () => {
    const sc = await docScenario({ docs: 100 });
    const flag = `/ferry/${sc.migrationId}/flags/USERS_GROUPS_DB`;
    const running = startFerry(['local', 'doctype-copy', '--input', sc.inputFile(), '--state-dir', sc.stateDir], sc.env);
    await running.waitFor(/waiting for approval "cutover"/);
    const r = await runFerry(['revert', sc.migrationId, '--reason', 'too early', '--state-dir', sc.stateDir], sc.env);
    expect(r.code, r.stderr).toBe(1);
    await new Promise((res) => setTimeout(res, 1500));
    expect(running.child.exitCode, running.stderr()).toBeNull();
    expect(existsSync(join(sc.stateDir, 'approvals', `${sc.migrationId}.cutover.json`))).toBe(true);
    expect(flag in sc.flags()).toBe(false);
    running.child.kill('SIGKILL');
    await running.done;
  });
});
