/**
 * The local approval page (README "The approval page"): "any user of the machine can reach the
 * port, only whoever sees the printed address can use it", even a server of theirs on another
 * port of 127.0.0.1 that the person's browser visits.
 */
import { createServer, request, type Server } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { startFerry } from '../helpers/cli.ts';
import { launchChromium } from '../helpers/browser.ts';
import { scenario, type Scenario } from '../helpers/scenario.ts';

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

describe('the local approval page and other servers on 127.0.0.1', () => {
  let browser: Browser;
  let sc: Scenario | undefined;
  let other: Server | undefined;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });
  afterEach(async () => {
    await sc?.close();
    sc = undefined;
    await new Promise<void>((r) => (other ? other.close(() => r()) : r()));
    other = undefined;
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
