import { createServer, request, type Server } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { runFerry, startFerry } from '../helpers/cli.ts';
import { launchChromium } from '../helpers/browser.ts';
import { tableFingerprint } from '../helpers/db.ts';
import { scenario, SRC, TGT, type Scenario } from '../helpers/scenario.ts';

function http(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers ?? {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

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
  let other: Server | undefined;
  afterEach(async () => {
    await sc?.close();
    sc = undefined;
    await new Promise<void>((r) => (other ? other.close(() => r()) : r()));
    other = undefined;
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

  it('another local user\'s server on 127.0.0.1 (another port) cannot get what decides: the page keeps no cookie a browser would send it', async () => {
    sc = await scenario({ rows: 300 });
    const migrationId = sc.input().migrationId as string;
    const run = startFerry(['local', 'table-copy', '--input', sc.inputFile({ reverify: { everySeconds: 0 }, cleanup: { mode: 'none' } }), '--state-dir', sc.stateDir, '--approve', 'cleanup']);
    await run.waitFor(/waiting for approval "cutover"/);
    const printed = /approval page: (http:\/\/127\.0\.0\.1:(\d+)\/s\/[A-Za-z0-9_-]{43}\/)\n/.exec(run.stderr())!;
    const port = printed[2]!;

    // The person who started ferry opens the printed address, as README says.
    const page = await browser.newPage();
    await page.goto(printed[1]!);
    expect(await page.locator('main').innerText()).toContain(migrationId);

    // Another user of the machine runs a server on 127.0.0.1 (any other port) and gets the person
    // to open it (a link; its page then asks its own host for an image): cookies are not kept apart
    // by port, so the browser sends it every cookie of 127.0.0.1.
    const seen: string[] = [];
    other = createServer((req, res) => {
      if (req.headers.cookie) seen.push(req.headers.cookie);
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><p>hello</p><img src="/pixel.png">');
    });
    await new Promise<void>((r) => other!.listen(0, '127.0.0.1', () => r()));
    const otherPort = (other.address() as { port: number }).port;
    await page.goto(`http://127.0.0.1:${otherPort}/`);
    await page.waitForLoadState('networkidle');
    const stolen = seen.map((c) => new RegExp(`(?:^|; )(ferry-page-${port}=[^;]+)`).exec(c)?.[1]).find(Boolean);

    // With what it received, and without the printed address, it decides.
    const headers: Record<string, string> = { host: `127.0.0.1:${port}`, ...(stolen ? { cookie: stolen } : {}) };
    const list = await http(`http://127.0.0.1:${port}/`, { headers });
    const field = (name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(list.body)?.[1]?.replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&amp;/g, '&') ?? '';
    const form = new URLSearchParams({ migrationId, step: 'cutover', decision: 'approve', execution: field('execution'), requestedAt: field('requestedAt'), formKey: field('formKey') }).toString();
    const decided = await http(`http://127.0.0.1:${port}/decide`, { method: 'POST', headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, body: form });
    await page.close();

    // No cookie reaches the other port (the page sets none), and a decision without the printed address is refused.
    expect({ status: decided.status, cookieStolen: Boolean(stolen) }).toEqual({ status: 403, cookieStolen: false });
    run.child.kill('SIGINT');
    await run.done;
  });
});
