import { request } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { runFerry, startFerry } from '../helpers/cli.ts';
import { launchChromium } from '../helpers/browser.ts';
import { tableFingerprint } from '../helpers/db.ts';
import { scenario, SRC, TGT, type Scenario } from '../helpers/scenario.ts';

/** The approval page `ferry local` serves, driven in a real (headless) Chromium. */
describe('the approval page', () => {
  let browser: Browser;
  let sc: Scenario | undefined;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });
  afterEach(async () => {
    await sc?.close();
    sc = undefined;
  });

  /** The address ferry prints: the page's own, with its secret token. */
  const pageUrl = (stderr: string) => /approval page: (http:\/\/127\.0\.0\.1:\d+\/s\/[A-Za-z0-9_-]{43}\/)\n/.exec(stderr)![1]!;
  const origin = (url: string) => new URL(url).origin;

  it('shows what a cut-over rests on, and an Approve click lets the run go on, recorded as the person who clicked', async () => {
    sc = await scenario({ rows: 1500 });
    const migrationId = sc.input().migrationId as string;
    expect((await runFerry(['set', migrationId, 'throttle.maxThreadsRunning=50', '--state-dir', sc.stateDir])).code).toBe(0);
    const run = startFerry(['local', 'table-copy', '--input', sc.inputFile({ reverify: { everySeconds: 1 }, cleanup: { mode: 'none' } }), '--state-dir', sc.stateDir, '--approve', 'cleanup']);
    await run.waitFor(/waiting for approval "cutover"/);
    await run.waitFor(/re-verification: verified 0 minutes ago/);
    expect(run.stderr()).toContain(`Or decide on the approval page: ${pageUrl(run.stderr())}`);

    const page = await browser.newPage();
    await page.goto(pageUrl(run.stderr()));
    // no cookie: the token in the path is the only key, and a browser sends cookies to every port of 127.0.0.1
    expect(page.url()).toBe(pageUrl(run.stderr()));
    expect(await page.context().cookies()).toEqual([]);
    const pending = page.getByRole('region', { name: `Approval pending: cutover of ${migrationId}` });
    await expect.poll(() => pending.isVisible()).toBe(true);
    const text = await pending.innerText();
    expect(text).toMatch(/verified\s+\d+ ranges, 1,500 rows, up to id 1500; 0 repaired by a re-copy/);
    expect(text).toMatch(/re-verification\s+verified 0 minutes ago, \d+ ranges, 0 differences/);
    expect(text).toMatch(/rows in the source\s+\S+courseware_studentmodulehistory: 1,500 rows, ids 1 … 1500/);
    expect(text).toMatch(/rows in the target\s+\S+coursewarehistoryextended_studentmodulehistoryextended: 1,500 rows/);
    expect(text).toMatch(/flags this step sets\s+ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES=false/);
    expect(text).toMatch(/started by\s+\S+ \(ferry local, pid \d+\)/);
    expect(await page.getByRole('region', { name: `${migrationId} (table-copy)` }).innerText()).toMatch(/knobs\s+throttle\.maxThreadsRunning=50/);
    if (process.env.FERRY_SCREENSHOT) await page.screenshot({ path: process.env.FERRY_SCREENSHOT, fullPage: true });

    await pending.getByRole('button', { name: 'Approve cutover' }).click();
    await expect.poll(() => page.getByRole('status').innerText()).toMatch(new RegExp(`Approved: cutover of ${migrationId}, by \\S+ \\(approval page\\)`));
    const done = await run.done;
    expect(done.code, done.stderr).toBe(0);
    expect(done.stderr).toMatch(/approval cleanup: given by --approve/);
    expect(sc.flags()[`/ferry/${migrationId}/flags/ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`]).toBe('false');
    expect(await tableFingerprint(sc.conn, sc.tgt, TGT)).toEqual(await tableFingerprint(sc.conn, sc.src, SRC));
    await page.close();
  });

  it('will not reject without a reason; with one, the run fails as rejected, giving the reason and who', async () => {
    sc = await scenario({ rows: 200 });
    const migrationId = sc.input().migrationId as string;
    const run = startFerry(['local', 'table-copy', '--input', sc.inputFile({ cleanup: { mode: 'none' } }), '--state-dir', sc.stateDir]);
    await run.waitFor(/waiting for approval "cutover"/);
    const page = await browser.newPage();
    await page.goto(pageUrl(run.stderr()));
    const pending = page.getByRole('region', { name: `Approval pending: cutover of ${migrationId}` });
    // the browser holds back a rejection without a reason
    await pending.getByRole('button', { name: 'Reject cutover' }).click();
    expect(await pending.getByLabel('Reason for rejecting (required)').evaluate((e: HTMLTextAreaElement) => e.validity.valueMissing)).toBe(true);
    // and so does the server, for a form sent without the browser's check
    const fields = await pending.locator('form:has(button.reject) input[type=hidden]').evaluateAll((inputs: HTMLInputElement[]) => inputs.map((i) => [i.name, i.value]));
    const post = (extra: Record<string, string>, at = new URL('decide', pageUrl(run.stderr()))) =>
      fetch(at, { method: 'POST', body: new URLSearchParams({ ...Object.fromEntries(fields), ...extra }), redirect: 'manual' }).then(async (r) => ({ status: r.status, text: await r.text() }));
    const forged = await post({ reason: '   ' });
    // a form that did not come from this page (another site's) is refused too
    const foreign = await post({ formKey: 'guessed', reason: 'from elsewhere' });
    // and so is a whole, well-formed decision from someone without the printed address (another local user)
    const stranger = await post({ reason: 'not mine to decide' }, new URL('/decide', origin(pageUrl(run.stderr()))));
    expect(foreign.status).toBe(403);
    expect(forged.status).toBe(400);
    expect(forged.text).toContain('A rejection needs a reason');
    expect(stranger.status).toBe(403);
    expect(stranger.text).not.toContain(migrationId);
    expect(run.child.exitCode).toBeNull();
    await page.reload();
    await expect.poll(() => pending.isVisible()).toBe(true);

    await pending.getByLabel('Reason for rejecting (required)').fill('exam week: no cut-over until Monday');
    await pending.getByRole('button', { name: 'Reject cutover' }).click();
    await expect.poll(() => page.getByRole('status').innerText()).toMatch(/Rejected: cutover of .*The execution stops as rejected/);
    const failed = await run.done;
    expect(failed.code).toBe(1);
    expect(failed.last).toMatchObject({ status: 'FAILED', error: 'ApprovalRejected', cause: expect.stringMatching(/cutover rejected by \S+ \(approval page\): exam week: no cut-over until Monday/) });
    expect(sc.flags()[`/ferry/${migrationId}/flags/ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES`]).toBe('true');

    // the run is over; `ferry ui` serves the same page for the state dir, with nothing left to decide
    const ui = startFerry(['ui', '--state-dir', sc.stateDir]);
    await ui.waitFor(/approval page for .*: http:\/\/127\.0\.0\.1:\d+\/s\/[A-Za-z0-9_-]{43}\/ \(Ctrl-C to stop\)/);
    const uiUrl = /(http:\/\/127\.0\.0\.1:\d+\/s\/[A-Za-z0-9_-]+\/)/.exec(ui.stderr())![1]!;
    // the run's page's token is no key to this one (another server, another token)
    await page.goto(`${origin(uiUrl)}${new URL(pageUrl(run.stderr())).pathname}`);
    expect(await page.locator('body').innerText()).not.toContain(migrationId);
    await page.goto(uiUrl);
    const main = await page.locator('main').innerText();
    expect(main).toMatch(/No approval is pending/);
    expect(main).toMatch(new RegExp(`${migrationId} \\(table-copy\\)[\\s\\S]*phase\\s+cutover-approval`));
    // another host name that reaches the port (a rebinding attack's) gets nothing
    const rebound = await new Promise<number>((resolve, reject) => {
      request(uiUrl, { headers: { host: 'evil.example' } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      }).on('error', reject).end();
    });
    expect(rebound).toBe(421);
    ui.child.kill('SIGINT');
    expect((await ui.done).code).toBe(0);
    await page.close();
  });
});
