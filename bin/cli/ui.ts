import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { LocalApprovalStore } from '../../lambdas/adapters/approvals.ts';
import { FileFlagStore } from '../../lambdas/adapters/flags.ts';
import { localDecisionPorts, takeDecision } from '../../lambdas/approvals/decide.ts';
import { REVERTIBLE_MACHINES } from '../../lambdas/core/ports/approvals.ts';
import { handlePage, type Fact, type MigrationView, type PageBackend, type PendingView } from '../../lambdas/approvals/page.ts';
import { describeKnobsSet } from '../../lambdas/core/knobs.ts';
import { machineOfInput } from '../../lambdas/core/machine-inputs.ts';
import type { Progress } from '../../lambdas/core/ports/task-deps.ts';
import { describeReverify, type ReverifyRecord } from '../../lambdas/core/tables/reverify-record.ts';
import { runLockInfo } from './run-lock.ts';
import { alterStats, docStats, tableStats, triggersHeld } from './stats.ts';

const fmt = new Intl.NumberFormat('en-US');
const n = (v: string | number | null | undefined) => (v === null || v === undefined ? '?' : fmt.format(BigInt(v)));

type TableSide = { table: string; exists: boolean; rows?: string; estimated?: boolean; min?: string | null; max?: string | null };

function side(label: string, s: TableSide): Fact {
  return { label, value: s.exists ? `${s.table}: ${s.estimated ? '~' : ''}${n(s.rows)} rows${s.estimated ? " (the server's estimate)" : ''}, ids ${s.min ?? '–'} … ${s.max ?? '–'}` : `${s.table}: does not exist` };
}

function reverifyFacts(r: ReverifyRecord | null, raw: unknown): Fact[] {
  const everySeconds = (raw as { reverify?: { everySeconds?: number } }).reverify?.everySeconds;
  return [{ label: 're-verification', value: describeReverify(r, Date.now(), everySeconds) }, ...(r?.differences ?? []).map((d) => ({ label: 'difference', value: d.detail }))];
}

/** Phase, progress and, when an approval is pending, the facts to decide on, read from the databases. */
async function describe(raw: unknown, env: NodeJS.ProcessEnv, withFacts: boolean): Promise<{ phase: string | null; progress: string | null; facts: Fact[]; flags: (step: string) => Record<string, string> }> {
  const machine = machineOfInput(raw);
  const input = raw as { flags?: { cutover?: Record<string, string> } };
  const flags = (step: string) => (step === 'cutover' ? (input.flags?.cutover ?? {}) : {});
  if (machine === 'table-copy') {
    const s = await tableStats(raw, env, withFacts ? 'bounded' : 'none');
    const c = s.checkpoint;
    const facts: Fact[] = !withFacts || !c ? [] : [
      { label: 'verified', value: `${n(c.rangesVerified)} ranges, ${n(c.rowsVerified)} rows, up to ${keyWord(c.verifiedUpTo)} ${c.verifiedUpTo ?? '–'}; ${n(c.rangesRepaired)} repaired by a re-copy` },
      ...reverifyFacts(c.reverify as ReverifyRecord | null, raw),
      side('rows in the source', s.source as TableSide),
      side('rows in the target', s.target as TableSide),
      ...(s.oldTable ? [{ label: 'revert', value: s.oldTable }] : []),
    ];
    return { phase: c?.phase ?? null, progress: c ? `${n(c.rowsCopied)} of ~${n(c.estimatedRows)} rows copied, up to ${keyWord(c.copiedUpTo)} ${c.copiedUpTo ?? '–'}; ${n(c.rowsDeleted)} deleted` : null, facts, flags };
  }
  if (machine === 'online-alter') {
    const s = await alterStats(raw, env, withFacts ? 'bounded' : 'none');
    const c = s.checkpoint;
    const facts: Fact[] = !withFacts || !c ? [] : [
      { label: 'verified', value: `${n(c.rangesVerified)} ranges, ${n(c.rowsVerified)} rows, up to ${keyWord(c.verifiedUpTo)} ${c.verifiedUpTo ?? '–'}; ${n(c.rangesRepaired)} repaired` },
      ...reverifyFacts(c.reverify as ReverifyRecord | null, raw),
      side('rows in the table', s.table as TableSide),
      side('rows in the altered copy', s.shadow as TableSide),
    ];
    return { phase: c?.phase ?? null, progress: c ? `${n(c.rowsCopied)} of ~${n(c.estimatedRows)} rows copied, up to ${keyWord(c.copiedUpTo)} ${c.copiedUpTo ?? '–'}` : null, facts, flags: () => ({}) };
  }
  // Counting docs per type reads a view (or every doc): only when an approval is pending.
  if (!withFacts) return { phase: null, progress: null, facts: [], flags };
  const lines = (await docStats(raw, env)).split('\n');
  const checkpoint = lines.find((l) => l.startsWith('checkpoint: '));
  const phase = /phase (\S+),/.exec(checkpoint ?? '')?.[1] ?? null;
  return { phase, progress: checkpoint?.replace(/^checkpoint: /, '') ?? null, facts: withFacts ? lines.slice(1).filter((l) => !l.startsWith('checkpoint: ')).map((l) => ({ label: 'docs', value: l.trim() })) : [], flags };
}

/**
 * The page's view of a state dir: every migration `ferry local` ran from it (its saved input),
 * its checkpoint read from the databases, its knobs, and its pending approvals; decisions go
 * through the state dir's approval files, as `ferry approve` does.
 */
export function localBackend(stateDir: string, env: NodeJS.ProcessEnv, live?: ReadonlyMap<string, Progress>): PageBackend {
  const approvals = new LocalApprovalStore(stateDir);
  const knobs = new FileFlagStore(stateDir, 'knobs');
  return {
    async migrations(): Promise<MigrationView[]> {
      let names: string[] = [];
      try {
        names = (await readdir(join(stateDir, 'inputs'))).filter((f) => f.endsWith('.json')).sort();
      } catch {
        return [];
      }
      const pending = await approvals.pending();
      return Promise.all(
        names.map(async (file): Promise<MigrationView> => {
          const raw = JSON.parse(await readFile(join(stateDir, 'inputs', file), 'utf8')) as { migrationId: string };
          const migrationId = raw.migrationId;
          const mine = pending.filter((p) => p.migrationId === migrationId);
          const lock = runLockInfo(stateDir, migrationId);
          const last = live?.get(migrationId);
          let d: Awaited<ReturnType<typeof describe>> | null = null;
          let problem: string | undefined;
          try {
            d = await describe(raw, env, mine.length > 0);
          } catch (err) {
            problem = `${(err as Error).name}: ${(err as Error).message}`;
          }
          const views: PendingView[] = mine.map((p) => ({
            step: p.step,
            since: p.requestedAt,
            execution: p.execution,
            startedBy: lock ? `${lock.user ?? 'someone'} (ferry local, pid ${lock.pid})` : null,
            startedAt: lock?.startedAt ?? null,
            facts: d?.facts ?? [],
            flags: d?.flags(p.step) ?? {},
            mayRevert: p.step === 'cleanup' && REVERTIBLE_MACHINES.includes(machineOfInput(raw)),
          }));
          const holds = machineOfInput(raw) === 'online-alter' ? await triggersHeld(raw, env).catch(() => null) : null;
          const oldHome = d?.facts.find((f) => f.value.startsWith('old database: ') || f.value.startsWith('old table: '))?.value;
          return {
            migrationId,
            machine: machineOfInput(raw),
            run: lock ? `ferry local running since ${lock.startedAt} (pid ${lock.pid}${lock.user ? `, ${lock.user}` : ''})` : 'no run is going: run the same command to resume',
            ...(holds ? { holds } : {}),
            ...(oldHome ? { oldHome } : {}),
            phase: d?.phase ?? last?.phase ?? null,
            progress: d?.progress ?? null,
            throttle: last?.throttle ?? null,
            knobs: describeKnobsSet(await knobs.list(migrationId)),
            pending: views,
            ...(problem ? { problem } : {}),
          };
        }),
      );
    },
    decide: (migrationId, step, decision, seen) => takeDecision({ migrationId, step, ...decision, seen }, { name: decision.by }, localDecisionPorts(approvals)),
  };
}

async function body(req: IncomingMessage): Promise<string> {
  const decoder = new TextDecoder();
  let text = '';
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Uint8Array).length;
    if (size > 16_384) throw new Error('form too large');
    // Decoded as a stream: a character split between two chunks stays one character.
    text += decoder.decode(chunk as Uint8Array, { stream: true });
  }
  return text + decoder.decode();
}

/** Whether `given` is `secret`, in time that does not depend on where they differ (both hashed to one length). */
function sameSecret(given: string | undefined, secret: string): boolean {
  if (given === undefined) return false;
  const digest = (text: string) => new Uint8Array(createHash('sha256').update(text).digest());
  return timingSafeEqual(digest(given), digest(secret));
}

const REFUSED = 'This is the ferry approval page: open it at the address ferry printed (http://127.0.0.1:PORT/s/<token>/); it shows nothing without it.\n';

/**
 * Serves the approval page on 127.0.0.1 (a port of its own, or `port`) for the state dir. It
 * answers only requests addressed to that host and port (a page of another site cannot reach it
 * through a name that resolves there), and only to whoever holds the address it returns, which
 * carries a secret token in its path (`/s/<token>/`, every link and form of the page under it):
 * any user of the machine can reach the port, only the one who started ferry has the address.
 * Not a cookie: browsers do not keep cookies apart by port, so one would reach any other server
 * on 127.0.0.1 the person's browser visits. Without the token the page shows nothing and decides
 * nothing (403). A decision must also carry the key of the page it came from.
 * The decision is recorded as the local user's, through the approval page.
 */
export async function servePage(opts: { stateDir: string; env: NodeJS.ProcessEnv; port?: number; live?: ReadonlyMap<string, Progress> }): Promise<{
  /** The page's address with its token: print it only to the one who started ferry. */
  url: string;
  close: () => Promise<void>;
}> {
  const backend = localBackend(opts.stateDir, opts.env, opts.live);
  const formKey = randomBytes(24).toString('base64url');
  const token = randomBytes(32).toString('base64url');
  const base = `/s/${token}`;
  const caller = { name: `${userInfo().username} (approval page)`, mayDecide: true };
  let port = 0;
  // When the last decision was answered: its redirect's page is still to be asked for.
  let decidedAt = 0;
  const server = createServer((req, res) => {
    void (async () => {
      const host = req.headers.host ?? '';
      if (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`) {
        res.writeHead(421, { 'content-type': 'text/plain' }).end('this page answers only at its own address\n');
        return;
      }
      const url = new URL(req.url ?? '/', `http://${host}`);
      const refuse = () => res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }).end(REFUSED);
      const [, s, given, ...rest] = url.pathname.split('/');
      if (s !== 's' || !sameSecret(given, token)) return refuse();
      const path = `/${rest.join('/')}`;
      const form = req.method === 'POST' ? Object.fromEntries(new URLSearchParams(await body(req))) : {};
      const out = await handlePage({ method: req.method ?? 'GET', path, form, query: Object.fromEntries(url.searchParams) }, caller, backend, { where: `local, state dir ${opts.stateDir}`, formKey, base });
      if (req.method === 'POST' && out.status === 303) decidedAt = Date.now();
      res.writeHead(out.status, out.headers).end(out.body);
    })().catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`ferry: ${err.name}: ${err.message}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}${base}/`,
    // A request under way (the decision that ends the run, and the page its redirect asks for, 2 s
    // at most after it) is finished first, for at most 5 s.
    close: async () => {
      const wait = decidedAt + 2000 - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), 5000);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}

/** An id (a key of one integer column, a decimal) or a key of any other shape (a JSON array of its values). */
function keyWord(value: unknown): string {
  return typeof value === 'string' && value.startsWith('[') ? 'key' : 'id';
}
