import { describe, expect, it } from 'vitest';
import { runFerry } from '../helpers/cli.ts';
import { bulk, couch, revisions } from '../helpers/couch.ts';
import { docScenario } from '../helpers/doc-scenario.ts';

describe('ferry local doctype-copy refuses bad input with exit 2 and deletes nothing', () => {
  async function expectRefused(mutate: (sc: Awaited<ReturnType<typeof docScenario>>) => Promise<Record<string, unknown>>, message: RegExp, env: NodeJS.ProcessEnv = {}) {
    const sc = await docScenario({ docs: 30 });
    const overrides = await mutate(sc);
    const before = await revisions(sc.source);
    const run = await runFerry(['local', 'doctype-copy', '--input', sc.inputFile(overrides), '--state-dir', sc.stateDir, '--approve', 'all'], { ...sc.env, ...env });
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(await revisions(sc.source)).toEqual(before);
    expect((await couch('GET', `/${sc.target}/_local/ferry-${sc.migrationId}`)).status).toBe(404);
    expect(sc.flags()).toEqual({});
  }

  it('an unknown source database', () => expectRefused(async () => ({ source: { connection: 'main', database: 'no_such_db' } }), /source.database: database no_such_db does not exist/));
  it('an unknown target database that ferry may not create', () => expectRefused(async () => ({ target: { connection: 'main', database: 'no_such_target', create: false } }), /target.database: .* create it \(PUT \/no_such_target\), let ferry create it/));
  it('a source view that does not exist', () => expectRefused(async (sc) => ({ source: { connection: 'main', database: sc.source, docTypeView: 'nope/by_doc_type' } }), /source.docTypeView: nope\/by_doc_type cannot be read/));
  it('an empty docTypes', () => expectRefused(async () => ({ docTypes: [] }), /docTypes: name at least one doc type/));
  it('a malformed docTypes', () => expectRefused(async () => ({ docTypes: [42] }), /docTypes.0: /));
  it('a target holding other revisions of the same ids', () =>
    expectRefused(async (sc) => {
      await bulk(sc.target, [{ _id: 'd000000', doc_type: 'CommCareUser', written: 'elsewhere' }]);
      return {};
    }, /already holds revisions the source does not have \(ids d000000\)/));
});

describe('ferry local doctype-copy with its server not answering when the run starts', () => {
  it('refuses at once (exit 2), naming the server and where its URL came from, and writes nothing', async () => {
    const sc = await docScenario({ docs: 5 });
    const before = await revisions(sc.source);
    const run = await runFerry(['local', 'doctype-copy', '--input', sc.inputFile(), '--state-dir', sc.stateDir, '--approve', 'all'], { ...sc.env, COUCH_URL: 'http://127.0.0.1:1', FERRY_LOCAL_RETRY_MILLIS: '20' });
    expect(run.code, run.stderr).toBe(2);
    expect(run.last).toMatchObject({ error: 'InvalidInput', cause: expect.stringMatching(/^source\.connection: cannot reach CouchDB connection "main" at http:\/\/127.0.0.1:1 \(from COUCH_URL\)/) });
    expect(run.stderr).not.toMatch(/retry \d of 6/);
    expect(await revisions(sc.source)).toEqual(before);
    expect(sc.flags()).toEqual({});
  });
});

describe('ferry local doctype-copy with no CouchDB configured', () => {
  it('starts an embedded in-memory PouchDB Server, says so, and refuses the databases it does not have', async () => {
    const sc = await docScenario({ docs: 5 });
    const env: NodeJS.ProcessEnv = { COUCH_URL: '' };
    const run = await runFerry(['local', 'doctype-copy', '--input', sc.inputFile(), '--state-dir', sc.stateDir], env);
    expect(run.stderr).toMatch(/no CouchDB answers at the default URL and COUCH_URL is not set: started an embedded in-memory PouchDB Server at http:\/\/127\.0\.0\.1:\d+/);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/source.database: database ferry_t_commcarehq_\w+ does not exist at http:\/\/127\.0\.0\.1:\d+/);
  });
});
