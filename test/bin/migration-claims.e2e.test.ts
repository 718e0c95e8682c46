import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runFerry, startFerry, writeJson } from '../helpers/cli.ts';
import { couch, createDb, revisions, uniqueDb } from '../helpers/couch.ts';
import { historyTableSql, makeDatabases, tableFingerprint } from '../helpers/db.ts';
import { docScenario } from '../helpers/doc-scenario.ts';
import { scenario, SRC, TGT, type Scenario } from '../helpers/scenario.ts';

/** Every file under the state dir with its content, but the run locks (an absent dir is no file). */
function files(dir: string): Record<string, string> {
  if (!existsSync(dir)) return {};
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    if (statSync(path).isFile() && !name.endsWith('.lock')) out[name] = readFileSync(path, 'utf8');
  }
  return out;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('a migration id has one owner per state dir: its first input binds it to what it moves', () => {
  let sc: Scenario | undefined;
  let drop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await drop?.();
    await sc?.close();
    sc = undefined;
    drop = undefined;
  });

  it('table-copy: the same id with another target is refused by ferry local and ferry plan (exit 2), naming the owner, writing nothing; the same input resumes', async () => {
    sc = await scenario({ rows: 500 });
    const migrationId = sc.input().migrationId as string;
    const other = await makeDatabases(sc.conn, 'other');
    drop = other.drop;
    const otherDb = other.names.other!;
    await sc.conn.query(historyTableSql(otherDb, TGT, 'bigint unsigned'));

    // the owner: stopped at its cut-over approval, its copy flags set and its approval pending
    const file = sc.inputFile({ cleanup: { mode: 'none' } });
    const first = startFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir]);
    await first.waitFor(/waiting for approval "cutover"/);
    first.child.kill('SIGKILL');
    await first.done;
    const stateBefore = files(sc.stateDir);
    expect(stateBefore['flags.json']).toContain(`/ferry/${migrationId}/flags/ENABLE_CSMH_EXTENDED`);
    const otherBefore = await tableFingerprint(sc.conn, otherDb, TGT);

    const owner = new RegExp(
      `migrationId: migration id ${escape(migrationId)} belongs to table-copy of edxapp\\.${sc.src}\\.${SRC} → csmh\\.${sc.tgt}\\.${TGT} ` +
        `\\(claimed \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z by local:table-copy:${escape(migrationId)}:[^)]+\\); choose another migrationId`,
    );
    const elsewhere = sc.inputFile({ target: { connection: 'csmh', database: otherDb, table: TGT }, cleanup: { mode: 'none' } });
    const plan = await runFerry(['plan', 'table-copy', '--input', elsewhere, '--state-dir', sc.stateDir]);
    expect(plan.code, plan.stderr).toBe(2);
    expect(plan.stderr).toMatch(owner);
    const run = await runFerry(['local', 'table-copy', '--input', elsewhere, '--state-dir', sc.stateDir, '--approve', 'all']);
    expect(run.code, run.stderr).toBe(2);
    expect(run.last).toMatchObject({ error: 'InvalidInput' });
    expect(run.stderr).toMatch(owner);

    // nothing of the second input anywhere: no ferry table in its target, no flag, token or input changed
    const [tables] = await sc.conn.query('SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY 1', [otherDb]);
    expect((tables as { t: string }[]).map((r) => r.t)).toEqual([TGT]);
    expect(await tableFingerprint(sc.conn, otherDb, TGT)).toEqual(otherBefore);
    expect(files(sc.stateDir)).toEqual(stateBefore);

    // the owner's input, with other knobs, resumes and ends
    const resumed = await runFerry(['local', 'table-copy', '--input', sc.inputFile({ cleanup: { mode: 'none' }, chunk: { targetMillis: 100, minRows: 20, maxRows: 1000 } }), '--state-dir', sc.stateDir, '--approve', 'all']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect((await tableFingerprint(sc.conn, sc.tgt, TGT)).rows).toBe('500');
    // and the id stays bound once the migration is done: another source is refused too
    const again = await runFerry(['local', 'table-copy', '--input', elsewhere, '--state-dir', sc.stateDir, '--approve', 'all']);
    expect(again.code, again.stderr).toBe(2);
    expect(again.stderr).toMatch(owner);
  });

  it('doctype-copy: the same id with another target database is refused (exit 2), naming the owner, and the target is not even created; plan refuses too', async () => {
    const d = await docScenario({ docs: 60 });
    const done = await runFerry(['local', 'doctype-copy', '--input', d.inputFile({ cleanup: { mode: 'none' } }), '--state-dir', d.stateDir, '--approve', 'all'], d.env);
    expect(done.code, done.stderr).toBe(0);
    const stateBefore = files(d.stateDir);

    const owner = new RegExp(
      `migrationId: migration id ${escape(d.migrationId)} belongs to doctype-copy of CommCareUser, Group, WebUser from main:${escape(d.source)} → main:${escape(d.target)} ` +
        `\\(claimed \\d{4}-[^)]+ by local:doctype-copy:[^)]+\\); choose another migrationId`,
    );
    const missing = uniqueDb('users2');
    const created = uniqueDb('users3');
    await createDb(created);
    for (const target of [missing, created]) {
      const elsewhere = d.inputFile({ target: { connection: 'main', database: target }, cleanup: { mode: 'none' } });
      const plan = await runFerry(['plan', 'doctype-copy', '--input', elsewhere, '--state-dir', d.stateDir], d.env);
      expect(plan.code, plan.stderr).toBe(2);
      expect(plan.stderr).toMatch(owner);
      const run = await runFerry(['local', 'doctype-copy', '--input', elsewhere, '--state-dir', d.stateDir, '--approve', 'all'], d.env);
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).toMatch(owner);
    }
    expect((await couch('GET', `/${missing}`)).status).toBe(404);
    expect(await revisions(created)).toEqual({});
    expect((await couch('GET', `/${created}/_local/ferry-${d.migrationId}`)).status).toBe(404);
    // other doc types into the same databases are another migration as well
    const fewer = await runFerry(['local', 'doctype-copy', '--input', d.inputFile({ docTypes: ['Group'], cleanup: { mode: 'none' } }), '--state-dir', d.stateDir, '--approve', 'all'], d.env);
    expect(fewer.code, fewer.stderr).toBe(2);
    expect(fewer.stderr).toMatch(owner);
    expect(files(d.stateDir)).toEqual(stateBefore);
    // the same input runs again (a re-run of a finished migration): its binding is the owner's
    const rerun = await runFerry(['local', 'doctype-copy', '--input', d.inputFile({ cleanup: { mode: 'none' } }), '--state-dir', d.stateDir, '--approve', 'all'], d.env);
    expect(rerun.code, rerun.stderr).toBe(0);
  });

  it('online-alter: the id of a table-copy is refused for another machine, and the table is left as it was', async () => {
    sc = await scenario({ rows: 50 });
    const done = await runFerry(['local', 'table-copy', '--input', sc.inputFile({ cleanup: { mode: 'none' } }), '--state-dir', sc.stateDir, '--approve', 'all']);
    expect(done.code, done.stderr).toBe(0);
    const migrationId = sc.input().migrationId as string;
    const other = await makeDatabases(sc.conn, 'alter');
    drop = other.drop;
    const db = other.names.alter!;
    await sc.conn.query(historyTableSql(db, SRC, 'int'));
    const input = writeJson(sc.dir, 'alter.json', { migrationId, table: { connection: 'edxapp', database: db, table: SRC }, alter: 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT' });
    const run = await runFerry(['local', 'online-alter', '--input', input, '--state-dir', sc.stateDir, '--approve', 'all']);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(new RegExp(`migrationId: migration id ${escape(migrationId)} belongs to table-copy of edxapp\\.${sc.src}\\.${SRC} → csmh\\.${sc.tgt}\\.${TGT} \\(claimed `));
    const [tables] = await sc.conn.query('SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY 1', [db]);
    expect((tables as { t: string }[]).map((r) => r.t)).toEqual([SRC]);
    const [triggers] = await sc.conn.query('SELECT COUNT(*) AS n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?', [db]);
    expect(Number((triggers as { n: string }[])[0]!.n)).toBe(0);
  });
});
