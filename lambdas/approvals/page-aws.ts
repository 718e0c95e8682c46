import { createHash, randomBytes } from 'node:crypto';
import { DescribeExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { GetParameterCommand, ParameterNotFound, type SSMClient } from '@aws-sdk/client-ssm';
import type { AwsApprovals } from '../adapters/approvals-aws.ts';
import type { FlagStore } from '../core/ports/flags.ts';
import { describeKnobsSet } from '../core/knobs.ts';
import { machineOfInput, migrationInputOfExecution } from '../core/machine-inputs.ts';
import { takeDecision } from './decide.ts';
import { REVERTIBLE_MACHINES } from '../core/ports/approvals.ts';
import { APPROVERS_GROUP, handlePage, type Fact, type MigrationView, type PageBackend, type PageCaller, type PageResponse } from './page.ts';

/**
 * The approval page on AWS: a Lambda behind an HTTP API. People sign in on the deployment's
 * Cognito user pool (its hosted UI, MFA required by default) through the authorization-code flow
 * with PKCE; the ID token, verified on every request, is kept in an HttpOnly, Secure, SameSite=Lax
 * cookie. Members of the `approvers` group may decide (asked of the user pool again for each
 * decision); anyone else signed in may look. Decisions go through takeDecision, as the decision
 * endpoint `ferry approve --aws` calls does.
 */

/** The API Gateway HTTP API event (payload 2.0), as much of it as the page reads. */
export interface HttpEvent {
  readonly rawPath: string;
  readonly rawQueryString?: string;
  readonly cookies?: readonly string[];
  readonly headers?: Readonly<Record<string, string | undefined>>;
  readonly body?: string;
  readonly isBase64Encoded?: boolean;
  readonly requestContext: { readonly domainName: string; readonly http: { readonly method: string } };
}

export interface HttpResult {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly cookies?: string[];
  readonly body: string;
}

/** Verifies an ID token of the pool's page client; throws when it is not one. */
export type IdTokenVerifier = (token: string) => Promise<{ readonly sub: string; readonly 'cognito:username'?: unknown; readonly email?: unknown; readonly 'cognito:groups'?: unknown }>;

export interface PageAws {
  readonly approvals: Pick<AwsApprovals, 'pending' | 'pendingRequest' | 'decide'>;
  /** Where every decision is logged (who, migration, step, request, outcome). */
  readonly log?: (message: string, entry: Record<string, unknown>) => void;
  /** The caller's groups as the user pool has them now (a decision re-checks membership; the ID token is up to an hour old). */
  readonly groupsNow?: (username: string) => Promise<string[]>;
  readonly sfn: SFNClient;
  readonly ssm: SSMClient;
  readonly knobs: FlagStore;
  readonly root: string;
  readonly deployment: string;
  /** `https://<prefix>.auth.<region>.amazoncognito.com` */
  readonly hostedUi: string;
  readonly clientId: () => Promise<string>;
  readonly verify: IdTokenVerifier;
  /** Exchanges an authorization code for tokens at the hosted UI's token endpoint. */
  readonly exchange?: (form: URLSearchParams) => Promise<{ id_token?: string }>;
}

// `__Host-`: the browser keeps them only if set Secure, for this host alone (no Domain), on Path=/.
const SESSION = '__Host-ferry_session';
const PKCE = '__Host-ferry_pkce';

function cookie(name: string, value: string, maxAge: number): string {
  return `${name}=${value}; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=${maxAge}`;
}

function cookiesOf(event: HttpEvent): Record<string, string> {
  return Object.fromEntries((event.cookies ?? []).map((c) => [c.slice(0, c.indexOf('=')).trim(), c.slice(c.indexOf('=') + 1).trim()]));
}

function redirect(location: string, cookies: string[] = []): HttpResult {
  return { statusCode: 302, headers: { location, 'cache-control': 'no-store' }, cookies, body: '' };
}

function text(statusCode: number, body: string): HttpResult {
  return { statusCode, headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }, body };
}

function groupsOf(claim: unknown): string[] {
  if (Array.isArray(claim)) return claim.map(String);
  if (typeof claim === 'string') return claim.replace(/^\[|\]$/g, '').split(/[ ,]+/).filter(Boolean);
  return [];
}

async function tokenExchange(hostedUi: string, form: URLSearchParams): Promise<{ id_token?: string }> {
  const res = await fetch(`${hostedUi}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
  if (!res.ok) throw new Error(`the sign-in could not be completed (${res.status})`);
  return (await res.json()) as { id_token?: string };
}

/** What the page shows of the deployment: each migration with a pending approval, and what that approval rests on. */
export function awsBackend(aws: PageAws): PageBackend {
  return {
    async migrations(): Promise<MigrationView[]> {
      const pending = await aws.approvals.pending();
      const ids = [...new Set(pending.map((p) => p.migrationId))].sort();
      return Promise.all(
        ids.map(async (migrationId): Promise<MigrationView> => {
          let machine = 'unknown';
          let flagsOf: (step: string) => Record<string, string> = () => ({});
          let oldHome: string | undefined;
          const views = await Promise.all(
            pending.filter((p) => p.migrationId === migrationId).map(async (p) => {
              const req = await aws.approvals.pendingRequest(migrationId, p.step);
              const exec = req ? await aws.sfn.send(new DescribeExecutionCommand({ executionArn: req.execution })) : null;
              const input = (migrationInputOfExecution(exec?.input) ?? {}) as { flags?: { cutover?: Record<string, string> } };
              machine = machineOfInput(input);
              flagsOf = (step) => (step === 'cutover' && machine !== 'online-alter' ? (input.flags?.cutover ?? {}) : {});
              const facts: Fact[] = [];
              if (req?.summary) facts.push({ label: 'progress when asked', value: Object.entries(req.summary as Record<string, unknown>).map(([k, v]) => `${k} ${v}`).join(', ') });
              if (p.step === 'cutover') {
                const reverify = await readParameter(aws.ssm, `${aws.root}/${migrationId}/status/reverify`);
                if (reverify) facts.push(...reverifyFacts(reverify));
              }
              if (p.step === 'cleanup') {
                const lag = await readParameter(aws.ssm, `${aws.root}/${migrationId}/status/lag`);
                if (lag) {
                  oldHome = lagFact(lag);
                  facts.push({ label: 'revert', value: oldHome });
                }
              }
              return {
                step: p.step,
                since: req?.requestedAt ?? p.since?.toISOString() ?? null,
                execution: req?.execution ?? 'unknown',
                startedBy: req?.separateFromStarter ? 'see CloudTrail (this deployment separates duties: decide with ferry approve --aws)' : null,
                startedAt: exec?.startDate?.toISOString() ?? null,
                facts,
                flags: flagsOf(p.step),
                mayRevert: p.step === 'cleanup' && REVERTIBLE_MACHINES.includes(machine),
              };
            }),
          );
          return { migrationId, machine, phase: `waiting for approval: ${views.map((v) => v.step).join(', ')}`, progress: null, throttle: null, knobs: describeKnobsSet(await aws.knobs.list(migrationId)), pending: views, ...(oldHome ? { oldHome } : {}) };
        }),
      );
    },
    // A page sign-in names no AWS principal: where duties are separated, approving is refused here.
    decide: (migrationId, step, decision, seen) => takeDecision({ migrationId, step, ...decision, seen }, { name: decision.by }, { approvals: aws.approvals, deployment: aws.deployment, starterOf: async () => [], log: aws.log ?? (() => {}) }),
  };
}

/** The scheduled re-verification's report (reverifyReportText) as facts; one that does not read is said to be unreadable. */
export function reverifyFacts(text: string): Fact[] {
  try {
    const r = JSON.parse(text) as { at?: string; note?: string; differences?: { detail?: string }[]; left?: number };
    return [
      { label: 're-verification', value: `${r.note ?? 'unknown'}${r.at ? ` (reported ${r.at})` : ''}` },
      ...(r.differences ?? []).map((d) => ({ label: 'difference', value: String(d.detail ?? d) })),
      ...(r.left ? [{ label: 'difference', value: `and ${r.left} more spans (see the task's log)` }] : []),
    ];
  } catch {
    return [{ label: 're-verification', value: 'its report does not read as JSON; see the Reverify function\'s log' }];
  }
}

/** The scheduled function's report of the old home's lag (lagReportText), in words; one that does not read is said to be unreadable. */
export function lagFact(text: string): string {
  try {
    const r = JSON.parse(text) as { at?: string; note?: string };
    return `${r.note ?? 'unknown'}${r.at ? ` (reported ${r.at})` : ''}`;
  } catch {
    return "its report does not read as JSON; see the Reverify function's log";
  }
}

async function readParameter(ssm: SSMClient, name: string): Promise<string | null> {
  try {
    return (await ssm.send(new GetParameterCommand({ Name: name }))).Parameter?.Value ?? null;
  } catch (err) {
    if (err instanceof ParameterNotFound || (err as Error).name === 'ParameterNotFound') return null;
    throw err;
  }
}

function asResult(r: PageResponse): HttpResult {
  return { statusCode: r.status, headers: { ...r.headers }, body: r.body };
}

/** One request of the page on AWS: sign-in, sign-out, or the page itself for a signed-in person. */
export async function handleAwsPage(event: HttpEvent, aws: PageAws): Promise<HttpResult> {
  const method = event.requestContext.http.method;
  const self = `https://${event.requestContext.domainName}`;
  const cookies = cookiesOf(event);
  const query = new URLSearchParams(event.rawQueryString ?? '');
  if (method === 'GET' && event.rawPath === '/login') {
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const state = randomBytes(16).toString('base64url');
    const url = new URL(`${aws.hostedUi}/oauth2/authorize`);
    url.search = new URLSearchParams({ response_type: 'code', client_id: await aws.clientId(), redirect_uri: `${self}/callback`, scope: 'openid email profile', code_challenge: challenge, code_challenge_method: 'S256', state }).toString();
    return redirect(url.toString(), [cookie(PKCE, `${state}.${verifier}`, 600)]);
  }
  if (method === 'GET' && event.rawPath === '/callback') {
    const [state, verifier] = (cookies[PKCE] ?? '').split('.');
    if (!state || !verifier || query.get('state') !== state || !query.get('code')) return text(400, 'The sign-in did not come from this page, or took too long: open the page again.\n');
    const form = new URLSearchParams({ grant_type: 'authorization_code', client_id: await aws.clientId(), code: query.get('code')!, redirect_uri: `${self}/callback`, code_verifier: verifier });
    const tokens = await (aws.exchange ?? ((f) => tokenExchange(aws.hostedUi, f)))(form);
    if (!tokens.id_token) return text(401, 'The sign-in gave no identity: open the page again.\n');
    await aws.verify(tokens.id_token);
    return redirect(`${self}/`, [cookie(SESSION, tokens.id_token, 3600), cookie(PKCE, '', 0)]);
  }
  if (event.rawPath === '/logout') {
    const url = new URL(`${aws.hostedUi}/logout`);
    url.search = new URLSearchParams({ client_id: await aws.clientId(), logout_uri: `${self}/` }).toString();
    return redirect(url.toString(), [cookie(SESSION, '', 0)]);
  }
  const token = cookies[SESSION];
  let claims: Awaited<ReturnType<IdTokenVerifier>>;
  try {
    if (!token) throw new Error('not signed in');
    claims = await aws.verify(token);
  } catch {
    return method === 'GET' ? redirect(`${self}/login`, [cookie(SESSION, '', 0)]) : text(401, 'Your sign-in has expired: open the page again and sign in.\n');
  }
  const username = String(claims['cognito:username'] ?? claims.sub);
  // A decision asks the user pool again: someone removed from the approvers keeps the group in their ID token until it expires.
  const groups = method === 'POST' && aws.groupsNow ? await aws.groupsNow(username) : groupsOf(claims['cognito:groups']);
  const caller: PageCaller = { name: `${claims.email ? String(claims.email) : username} (Cognito user ${username})`, mayDecide: groups.includes(APPROVERS_GROUP) };
  const body = event.body ? (event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body) : '';
  const form = method === 'POST' ? Object.fromEntries(new URLSearchParams(body)) : {};
  // The form key is bound to the session: a decision posted with another session's page is refused.
  const formKey = createHash('sha256').update(token!).digest('base64url');
  return asResult(await handlePage({ method, path: event.rawPath, form, query: Object.fromEntries(query) }, caller, awsBackend(aws), { where: aws.deployment, formKey }));
}
