import { describe, expect, it } from 'vitest';
import { runFerry } from '../helpers/cli.ts';
import { couch, revisions, uniqueDb } from '../helpers/couch.ts';
import { docScenario, wantedRevisions } from '../helpers/doc-scenario.ts';

/** Design docs of a database, by id and rev: what ferry must not touch in a source. */
async function designDocs(db: string): Promise<Record<string, string>> {
  const r = await couch<{ rows: { id: string; value: { rev: string } }[] }>('GET', `/${db}/_all_docs?startkey="_design/"&endkey="_design0"`);
  return Object.fromEntries(r.body.rows.map((x) => [x.id, x.value.rev]));
}

describe('doctype-copy reads the source the way the operator allows, and makes the target', () => {
  it('without a view named, reads every doc and writes nothing into the source; creates the missing target', async () => {
    const sc = await docScenario({ docs: 300 });
    const target = uniqueDb('created');
    const designBefore = await designDocs(sc.source);
    const wanted = await wantedRevisions(sc.source);
    const run = await runFerry(['local', 'doctype-copy', '--input', sc.inputFile({ source: { connection: 'main', database: sc.source }, target: { connection: 'main', database: target }, cleanup: { mode: 'none' } }), '--state-dir', sc.stateDir, '--approve', 'all'], sc.env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(new RegExp(`created ${target}`));
    expect(await revisions(target)).toEqual(wanted);
    expect(await designDocs(sc.source)).toEqual(designBefore);
  });

  it('with allowSourceView, builds its own view in the source and reads only the wanted docs', async () => {
    const sc = await docScenario({ docs: 300 });
    const wanted = await wantedRevisions(sc.source);
    const run = await runFerry(['local', 'doctype-copy', '--input', sc.inputFile({ source: { connection: 'main', database: sc.source }, allowSourceView: true, cleanup: { mode: 'none' } }), '--state-dir', sc.stateDir, '--approve', 'all'], sc.env);
    expect(run.code, run.stderr).toBe(0);
    expect(Object.keys(await designDocs(sc.source))).toContain('_design/ferry');
    expect(await revisions(sc.target)).toEqual(wanted);
  });
});
