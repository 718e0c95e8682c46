import { afterEach, describe, expect, it } from 'vitest';
import { runFerry, startFerry } from '../helpers/cli.ts';
import { tableFingerprint } from '../helpers/db.ts';
import { scenario, SRC, TGT, type Scenario } from '../helpers/scenario.ts';
import { firstFormFields } from '../helpers/page-form.ts';

/** A decision applies only to the request it answers, and is never taken on data a person did not see. */
describe('approvals that mean what they say', () => {
  let sc: Scenario | undefined;
  afterEach(async () => {
    await sc?.close();
    sc = undefined;
  });

  it('an approval given after the run that asked for it died is refused, and the next run asks again and waits', async () => {
    sc = await scenario({ rows: 2000 });
    const migrationId = sc.input().migrationId as string;
    const file = sc.inputFile({ cleanup: { mode: 'none' } });
    const cutoverFlag = `/ferry/${migrationId}/flags/ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`;
    const first = startFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir]);
    await first.waitFor(/waiting for approval "cutover"/);
    first.child.kill('SIGKILL');
    await first.done;

    const late = await runFerry(['approve', migrationId, '--step', 'cutover', '--state-dir', sc.stateDir]);
    expect(late.code).toBe(1);
    expect(late.stderr).toMatch(/no approval "cutover" of .* is pending .*: the run that asked for it \(pid \d+, .*\) is no longer running\. A decision applies only to the request it answers/);

    // the next run asks again and waits for a decision of its own: the flags stay as the copy set them
    const second = startFerry(['local', 'table-copy', '--input', file, '--state-dir', sc.stateDir, '--approve', 'cleanup']);
    await second.waitFor(/waiting for approval "cutover"/);
    await new Promise((r) => setTimeout(r, 1500));
    expect(second.child.exitCode).toBeNull();
    expect(sc.flags()[cutoverFlag]).toBe('true');
    const now = await runFerry(['approve', migrationId, '--step', 'cutover', '--state-dir', sc.stateDir]);
    expect(now.code, now.stderr).toBe(0);
    expect(now.stderr).toMatch(/^approved: .* step cutover\n$/);
    const done = await second.done;
    expect(done.code, done.stderr).toBe(0);
    expect(sc.flags()[cutoverFlag]).toBe('false');
    expect(done.stderr).toMatch(/approval cutover: given by .+ \(ferry approve\)|cutover/);
  });

  it('the re-verification does not empty the new table when the old one was emptied while the approval waited: it refuses the cut-over', async () => {
    sc = await scenario({ rows: 3000 });
    const migrationId = sc.input().migrationId as string;
    const run = startFerry(['local', 'table-copy', '--input', sc.inputFile({ reverify: { everySeconds: 1 }, cleanup: { mode: 'none' } }), '--state-dir', sc.stateDir]);
    await run.waitFor(/re-verification: verified 0 minutes ago, \d+ ranges, 0 differences/);
    const before = await tableFingerprint(sc.conn, sc.tgt, TGT);
    // someone empties the old table (a cleanup run by mistake)
    await sc.conn.query(`DELETE FROM \`${sc.src}\`.${SRC}`);
    await run.waitFor(/rows verified are gone from courseware_studentmodulehistory since; ferry does not delete so many from coursewarehistoryextended_studentmodulehistoryextended by itself/);
    expect(await tableFingerprint(sc.conn, sc.tgt, TGT)).toEqual(before);
    expect((await runFerry(['approve', migrationId, '--step', 'cutover', '--state-dir', sc.stateDir])).code).toBe(0);
    const failed = await run.done;
    expect(failed.code).toBe(1);
    expect(failed.last).toMatchObject({ error: 'VerificationFailed', cause: expect.stringMatching(/the cut-over flags were not set/) });
    expect(await tableFingerprint(sc.conn, sc.tgt, TGT)).toEqual(before);
    expect(sc.flags()[`/ferry/${migrationId}/flags/ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`]).toBe('true');
  });

  it('the local page shows and decides only for whoever holds the address ferry printed, whose path carries its token', async () => {
    sc = await scenario({ rows: 300 });
    const migrationId = sc.input().migrationId as string;
    const run = startFerry(['local', 'table-copy', '--input', sc.inputFile({ cleanup: { mode: 'none' }, reverify: { everySeconds: 0 } }), '--state-dir', sc.stateDir, '--approve', 'cleanup']);
    await run.waitFor(/waiting for approval "cutover"/);
    const printed = /approval page: (http:\/\/127\.0\.0\.1:\d+\/s\/([A-Za-z0-9_-]{43})\/)\n/.exec(run.stderr());
    expect(printed, run.stderr()).not.toBeNull();
    const [, url, token] = printed!;
    const origin = new URL(url!).origin;
    const base = `/s/${token}`;
    const get = (path: string, headers: Record<string, string> = {}) => fetch(new URL(path, origin), { headers, redirect: 'manual' });
    const read = async (r: Response) => ({ status: r.status, text: await r.text(), cookie: r.headers.get('set-cookie') });

    // without the token, or with a wrong one (even of the right length), the page shows nothing
    const wrong = token!.slice(0, -1) + (token!.endsWith('A') ? 'B' : 'A');
    for (const path of ['/', '/?token=guessed', `/s/${wrong}/`, `/s/${wrong}/decide`, '/s/', `/x/${token}/`]) {
      const r = await read(await get(path));
      expect(r.status, path).toBe(403);
      expect(r.text, path).not.toContain(migrationId);
      expect(r.text, path).not.toMatch(/cutover|rows/);
      expect(r.cookie, path).toBeNull();
    }

    // the printed address shows the page, and sets no cookie: a browser would send one to every port of 127.0.0.1
    const shown = await read(await get(url!));
    expect(shown.status).toBe(200);
    expect(shown.cookie).toBeNull();
    expect(shown.text).toContain(`Approval pending: cutover of ${migrationId}`);
    expect(shown.text).toContain(`action="${base}/decide"`);
    // re-verification turned off says so (not that nothing is pending)
    expect(shown.text).toContain('<dt>re-verification</dt><dd>off: reverify.everySeconds is 0');
    // the approve form as the page rendered it: the request it was shown for, and the page's key
    const fields = firstFormFields(shown.text);
    expect(fields).toMatchObject({ migrationId, step: 'cutover', decision: 'approve' });

    // a well-formed decision posted anywhere but under the token decides nothing
    const decide = (path: string) => fetch(new URL(path, origin), { method: 'POST', body: new URLSearchParams(fields), redirect: 'manual' }).then(read);
    for (const path of ['/decide', `/s/${wrong}/decide`]) {
      const r = await decide(path);
      expect(r.status, path).toBe(403);
      expect(r.text).not.toContain(migrationId);
    }
    await new Promise((r) => setTimeout(r, 1000));
    expect(run.child.exitCode).toBeNull();
    expect((await read(await get(`${base}/`))).text).toContain(`Approval pending: cutover of ${migrationId}`);
    expect(sc.flags()[`/ferry/${migrationId}/flags/ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`]).toBe('true');

    // with it, the decision is taken
    const approved = await fetch(new URL(`${base}/decide`, origin), { method: 'POST', body: new URLSearchParams(fields), redirect: 'manual' });
    expect(approved.status).toBe(303);
    expect(approved.headers.get('location')).toMatch(new RegExp(`^${base}/\\?outcome=`));
    expect((await read(await get(approved.headers.get('location')!))).text).toMatch(/Approved: cutover of/);
    const done = await run.done;
    expect(done.code, done.stderr).toBe(0);
    expect(sc.flags()[`/ferry/${migrationId}/flags/ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`]).toBe('false');
  });
});
