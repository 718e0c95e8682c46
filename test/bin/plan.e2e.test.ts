import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterEach, describe, expect, it } from 'vitest';
import { runFerry, startFerry } from '../helpers/cli.ts';
import { admin } from '../helpers/db.ts';
import { couch } from '../helpers/couch.ts';
import { docScenario } from '../helpers/doc-scenario.ts';
import { alterScenario, type AlterScenario } from '../helpers/alter-scenario.ts';
import { scenario, SRC, TGT, type Scenario } from '../helpers/scenario.ts';

/** Every table of the databases (with a checksum of its rows and its definition), and every trigger on them. */
async function databases(conn: mysql.Connection, ...dbs: string[]): Promise<unknown> {
  const out: Record<string, unknown> = {};
  for (const db of dbs) {
    const [tables] = await conn.query(`SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME`, [db]);
    for (const { t } of tables as { t: string }[]) {
      const [[sum]] = (await conn.query(`CHECKSUM TABLE \`${db}\`.\`${t}\` EXTENDED`)) as unknown as [{ Checksum: string }[]];
      const [[create]] = (await conn.query(`SHOW CREATE TABLE \`${db}\`.\`${t}\``)) as unknown as [Record<string, string>[]];
      out[`${db}.${t}`] = { checksum: String(sum!.Checksum), create: create!['Create Table']!.replace(/ AUTO_INCREMENT=\d+/, '') };
      const [[ai]] = (await conn.query('SELECT AUTO_INCREMENT AS ai FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [db, t])) as unknown as [{ ai: string | null }[]];
      out[`${db}.${t}.autoIncrement`] = ai!.ai === null ? null : String(ai!.ai);
    }
    const [triggers] = await conn.query('SELECT TRIGGER_NAME AS t FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ?', [db]);
    out[`${db} triggers`] = triggers;
  }
  return out;
}

/** Every file under the state dir with its content (an absent dir is no file). */
function files(dir: string): Record<string, string> {
  if (!existsSync(dir)) return {};
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    if (statSync(path).isFile()) out[name] = readFileSync(path, 'utf8');
  }
  return out;
}

describe('ferry plan', () => {
  let sc: Scenario | undefined;
  let alter: AlterScenario | undefined;
  afterEach(async () => {
    await sc?.close();
    await alter?.close();
    sc = undefined;
    alter = undefined;
  });

  it('table-copy: runs every check, says what would move, the disk, the time and the cost, and writes nothing', async () => {
    sc = await scenario({ rows: 3000, first: 1n, step: 3n });
    const file = sc.inputFile({ cleanup: { mode: 'truncate' } });
    const migrationId = sc.input().migrationId as string;
    // a knob set earlier is in force in the plan, as it would be in the run
    expect((await runFerry(['set', migrationId, 'chunk.targetMillis=250', '--state-dir', sc.stateDir])).code).toBe(0);
    const before = { db: await databases(sc.conn, sc.src, sc.tgt), state: files(sc.stateDir) };

    const text = await runFerry(['plan', 'table-copy', '--input', file, '--state-dir', sc.stateDir]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`ferry plan: table-copy "${migrationId}": every Preflight check passed; nothing was written`);
    expect(text.stdout).toContain('rows: 3,000');
    expect(text.stdout).toMatch(/ids 1 … 8998: 3,000 rows fill 33\.3\d*% of the span: mostly gaps/);
    expect(text.stdout).toMatch(/flags at SetCopyFlags .*: ENABLE_CSMH_EXTENDED=true/);
    expect(text.stdout).toMatch(/approvals: cutover: .*; cleanup: before courseware_studentmodulehistory is truncated/);
    expect(text.stdout).toMatch(/on AWS: about \d+ state transitions, \d+ Lambda invocations, \d+ Lambda-seconds, \$\d+\.\d\d/);
    expect(text.stdout).toContain('knobs in force: chunk.targetMillis=250');
    expect(text.stdout).toMatch(/warning: cleanup "truncate" empties/);

    const json = await runFerry(['plan', 'table-copy', '--input', file, '--state-dir', sc.stateDir, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const plan = JSON.parse(json.stdout);
    expect(plan).toMatchObject({ machine: 'table-copy', wouldRun: true, resumes: null, counts: { rows: '3000', exact: true, minId: '1', maxId: '8998', rowsLeft: '3000', sameServer: true } });
    expect(plan.estimate.sample).toMatchObject({ unit: 'rows', count: 3000 });
    expect(plan.estimate.seconds).toBeGreaterThan(0);
    // the server runs on this machine: free space is read from its data directory's file system
    expect(BigInt(plan.disk.freeBytes)).toBeGreaterThan(0n);
    expect(BigInt(plan.disk.needBytes)).toBeGreaterThan(0n);
    expect(plan.aws.transitions).toBeGreaterThanOrEqual(21);
    expect(plan.aws.dollars).toBeGreaterThanOrEqual(0);

    // nothing was written: no table, checkpoint, ledger, trigger or AUTO_INCREMENT change; no flag or file
    expect({ db: await databases(sc.conn, sc.src, sc.tgt), state: files(sc.stateDir) }).toEqual(before);

    // a plan made once the migration has run says where it stands
    const run = startFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'cutover']);
    await run.waitFor(/waiting for approval "cleanup"/);
    run.child.kill('SIGTERM');
    await run.done;
    const after = JSON.parse((await runFerry(['plan', 'table-copy', '--input', file, '--state-dir', sc.stateDir, '--json'])).stdout);
    expect(after.resumes).toMatchObject({ phase: 'cleanup-approval' });
    expect(after.resumes.note).toMatch(/3000 rows copied, up to id 8998, verified up to 8998/);
    expect(after.counts.rowsLeft).toBe('0');
  });

  it('table-copy: exits 2 with Preflight\'s own message when the run would be refused, and writes nothing', async () => {
    sc = await scenario({ rows: 100 });
    await sc.conn.query(`INSERT INTO \`${sc.tgt}\`.${TGT} (id, created, student_module_id) VALUES (5, NOW(6), 1)`);
    const file = sc.inputFile();
    const before = await databases(sc.conn, sc.src, sc.tgt);
    const planned = await runFerry(['plan', 'table-copy', '--input', file, '--state-dir', sc.stateDir, '--json']);
    expect(planned.code).toBe(2);
    expect(JSON.parse(planned.stdout)).toMatchObject({ wouldRun: false, refused: { field: 'target.table' } });
    const message = JSON.parse(planned.stdout).refused.message as string;
    expect(message).toMatch(/already holds rows but has no checkpoint/);
    expect(await databases(sc.conn, sc.src, sc.tgt)).toEqual(before);
    // the run refuses with the very same words
    const run = await runFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
    // bad input is refused like any command's
    const bad = await runFerry(['plan', 'table-copy', '--input', sc.inputFile({ chunk: { maxRows: 0 } })]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/chunk\.maxRows: at least 1 row/);
    expect(await databases(sc.conn, sc.src, sc.tgt)).toEqual(before);
    void SRC;
  });

  it('online-alter: the ALTER is tried and the triggers named, and the table is left exactly as it was', async () => {
    alter = await alterScenario(2000);
    const before = await databases(alter.conn, alter.db);
    const ok = await runFerry(['plan', 'online-alter', '--input', alter.inputFile(), '--state-dir', alter.stateDir]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/altered in place: ALTER TABLE … MODIFY id bigint unsigned/);
    expect(ok.stdout).toMatch(/warning: three triggers on courseware_studentmodule write every insert, update and delete/);
    expect(ok.stdout).toMatch(/rows: 1,999/);
    // what the application will feel: the triggers' cost per write and the copy's time, both measured on a scratch copy
    expect(ok.stdout).toMatch(/the application:\n  each insert, update and delete of courseware_studentmodule costs about \d+\.\d\d ms more .*200 deletes and 200 inserts \(commits left out\) took \d+ ms without them and \d+ ms with them/);
    expect(ok.stdout).toMatch(/the copy holds its locks about 50 ms at a time/);
    expect(ok.stdout).toMatch(/time: .*: the copy's own code copied 1999 rows of a scratch copy into its altered copy in \d+ ms; 1999 rows at that pace/);
    expect(await databases(alter.conn, alter.db)).toEqual(before);

    // a transaction left open on the server is named: it would hold the triggers' creation and the swap
    const idle = await admin();
    try {
      await idle.query('START TRANSACTION');
      await idle.query(`SELECT COUNT(*) FROM \`${alter.db}\`.courseware_studentmodule`);
      const [[{ thread }]] = (await idle.query('SELECT CONNECTION_ID() AS thread')) as unknown as [[{ thread: string }]];
      await new Promise((r) => setTimeout(r, 2100));
      const held = await runFerry(['plan', 'online-alter', '--input', alter.inputFile(), '--state-dir', alter.stateDir]);
      expect(held.code, held.stderr).toBe(0);
      expect(held.stdout).toMatch(new RegExp(`warning: \\d+ transactions? (is|are) open on the server for more than 1 s \\(.*thread ${thread} \\(root@[^)]*\\), open \\d+ s.*holds CREATE TRIGGER and the swap's RENAME`));
    } finally {
      await idle.end();
    }
    expect(await databases(alter.conn, alter.db)).toEqual(before);

    // a new unique key is refused as the run would refuse it; allowed, the plan warns what it means
    const unique = alter.inputFile({ alter: 'ADD UNIQUE KEY uniq_student_module (student_id, module_id)' });
    const refused = await runFerry(['plan', 'online-alter', '--input', unique, '--state-dir', alter.stateDir]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/alter: adds or narrows unique key uniq_student_module/);
    const allowed = await runFerry(['plan', 'online-alter', '--input', alter.inputFile({ alter: 'ADD UNIQUE KEY uniq_student_module (student_id, module_id)', allowNewUniqueKeys: true }), '--state-dir', alter.stateDir]);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stdout).toMatch(/warning: the ALTER adds unique key uniq_student_module \(student_id, module_id\)/);
    expect(await databases(alter.conn, alter.db)).toEqual(before);
  });

  it('doctype-copy: counts the docs per type through the view, and creates neither the target nor ferry\'s view', async () => {
    const d = await docScenario({ docs: 300 });
    await couch('DELETE', `/${d.target}`);
    const seqBefore = (await couch<{ update_seq: unknown }>('GET', `/${d.source}`)).body.update_seq;
    const viewed = await runFerry(['plan', 'doctype-copy', '--input', d.inputFile(), '--state-dir', d.stateDir, '--json'], d.env);
    expect(viewed.code, viewed.stderr).toBe(0);
    const plan = JSON.parse(viewed.stdout);
    // 300 docs over 6 types, 50 each, plus the edited WebUser, the conflicted Group and the CommCareUser with an attachment
    expect(plan.counts).toMatchObject({ exact: true, perType: { CommCareUser: 51, 'CommCareUser-Deleted': 50, WebUser: 51, Group: 51 }, docs: 203 });
    expect(plan.moves[0]).toMatch(/\(created by Preflight\)/);
    expect(plan.flags).toEqual([{ step: expect.stringMatching(/^SetCutoverFlags/), values: { USERS_GROUPS_DB: d.target } }]);
    expect(plan.estimate.sample).toMatchObject({ unit: 'docs' });

    // with ferry's own view allowed but not built, the plan reads by scanning and builds nothing
    const scan = await runFerry(['plan', 'doctype-copy', '--input', d.inputFile({ source: { connection: 'main', database: d.source }, allowSourceView: true }), '--state-dir', d.stateDir], d.env);
    expect(scan.code, scan.stderr).toBe(0);
    expect(scan.stdout).toMatch(/warning: allowSourceView: Preflight writes _design\/ferry/);
    expect(scan.stdout).toMatch(/CommCareUser 51/);
    expect((await couch('GET', `/${d.source}/_design/ferry`)).status).toBe(404);
    // the target was not created (other tests share this server, so only its own name is looked at)
    expect((await couch('GET', `/${d.target}`)).status).toBe(404);
    expect((await couch<{ update_seq: unknown }>('GET', `/${d.source}`)).body.update_seq).toEqual(seqBefore);
    expect(existsSync(d.stateDir)).toBe(false);
  });
});
