import { afterEach, describe, expect, it } from 'vitest';
import { killStrays, runFerry, startFerry, type Running } from '../helpers/cli.ts';
import { firstFormFields } from '../helpers/page-form.ts';
import { scenario, type Scenario } from '../helpers/scenario.ts';

/**
 * The page's form names the request it was shown for. A stale tab, or a form sent again, after
 * the run that asked was replaced by another that asks anew, decides nothing.
 */
describe('a decision applies only to the request the page showed', () => {
  let sc: Scenario | undefined;
  afterEach(async () => {
    killStrays();
    await sc?.close();
    sc = undefined;
  });

  /** A browser's view of `ferry ui`: opens the address it printed, follows redirects, keeps cookies if any. */
  async function client(ui: Running) {
    const start = new URL(/approval page for .*: (http:\/\/127\.0\.0\.1:\d+\/\S*)/.exec(ui.stderr())![1]!);
    const jar = new Map<string, string>();
    const send = async (url: URL, init: RequestInit = {}): Promise<Response> => {
      const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string>), cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } });
      for (const c of res.headers.getSetCookie()) jar.set(c.slice(0, c.indexOf('=')), c.slice(c.indexOf('=') + 1, c.indexOf(';') < 0 ? undefined : c.indexOf(';')));
      return res;
    };
    const get = async (url: URL): Promise<string> => {
      let res = await send(url);
      for (let hops = 0; res.status >= 300 && res.status < 400 && hops < 3; hops++) res = await send(new URL(res.headers.get('location')!, url));
      expect(res.status).toBe(200);
      return res.text();
    };
    const root = start;
    return {
      page: () => get(root),
      /** Posts the approve form as the page rendered it; answers with the page the redirect leads to. */
      async approve(html: string): Promise<{ status: number; page: string }> {
        const res = await send(new URL('decide', root), { method: 'POST', body: new URLSearchParams(firstFormFields(html)) });
        return { status: res.status, page: res.status === 303 ? await get(new URL(res.headers.get('location')!, root)) : await res.text() };
      },
    };
  }

  it('refuses a form shown for a run that was killed and replaced, and takes one shown for the run that asks now', async () => {
    sc = await scenario({ rows: 300 });
    const input = sc.inputFile({ cleanup: { mode: 'none' } });
    const first = startFerry(['local', 'table-copy', '--input', input, '--state-dir', sc.stateDir, '--approve', 'cleanup']);
    await first.waitFor(/waiting for approval "cutover"/);
    const ui = startFerry(['ui', '--state-dir', sc.stateDir]);
    await ui.waitFor(/approval page for /);
    const browser = await client(ui);
    const stale = await browser.page();
    expect(stale).toContain('Approval pending: cutover of');

    // the run is killed; a new run of the same input asks for the cut-over again
    first.child.kill('SIGKILL');
    await first.done;
    const second = startFerry(['local', 'table-copy', '--input', input, '--state-dir', sc.stateDir, '--approve', 'cleanup']);
    await second.waitFor(/waiting for approval "cutover"/);

    const refused = await browser.approve(stale);
    expect(refused.status).toBe(303);
    expect(refused.page).toContain('has changed since the page was shown');
    expect(refused.page).toContain('Approval pending: cutover of');
    // so does `ferry approve --execution` naming the run that is gone
    const gone = firstFormFields(stale).execution!;
    const migrationId = sc.input().migrationId as string;
    const cli = await runFerry(['approve', migrationId, '--step', 'cutover', '--execution', gone, '--state-dir', sc.stateDir]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/has changed since it was shown.*nothing was decided/);
    await new Promise((r) => setTimeout(r, 1500));
    expect(second.child.exitCode).toBeNull();
    expect(second.stderr()).not.toMatch(/approved/i);

    // the page shown now decides the request shown
    const taken = await browser.approve(await browser.page());
    expect(taken.page).toMatch(/Approved: cutover of .*, by \S+ \(approval page\)/);
    const done = await second.done;
    expect(done.code).toBe(0);
    ui.child.kill('SIGTERM');
  });
});
