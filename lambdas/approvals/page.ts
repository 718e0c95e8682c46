/**
 * The approval page: one small HTML page that lists the migrations and, for an approval that is
 * pending, shows what a person needs to decide and takes the decision. The same code serves it
 * locally (`ferry ui`, `ferry local`, on 127.0.0.1) and on AWS (a Lambda behind an HTTP API with a
 * Cognito authorizer); each side supplies a PageBackend and says who the caller is.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { InvalidInput } from '../core/errors.ts';
import { checkApprovalName } from '../core/input-parts.ts';
import type { SeenRequest } from '../core/ports/approvals.ts';
import { REASON_MAX, type DecisionOutcome } from './decide.ts';

/** The Cognito group whose members may decide on AWS. */
export const APPROVERS_GROUP = 'approvers';

export interface Fact {
  readonly label: string;
  readonly value: string;
}

export interface PendingView {
  readonly step: string;
  /** When the approval was asked for (ISO), if known. */
  readonly since: string | null;
  readonly execution: string;
  readonly startedBy: string | null;
  readonly startedAt: string | null;
  /** What the decision rests on: verification, re-verification, counts on both sides. */
  readonly facts: readonly Fact[];
  /** The flags the step sets once approved. */
  readonly flags: Readonly<Record<string, string>>;
  /** The step may be answered with a revert (the cleanup approval of a machine that can). */
  readonly mayRevert?: boolean;
}

export interface MigrationView {
  readonly migrationId: string;
  readonly machine: string;
  readonly phase: string | null;
  readonly progress: string | null;
  readonly throttle: string | null;
  readonly knobs: Readonly<Record<string, string>>;
  readonly pending: readonly PendingView[];
  /** Why the facts could not be read (a database not answering), if so. */
  readonly problem?: string;
  /** What the migration holds on a live table now (online-alter: its triggers, and since when), if anything. */
  readonly holds?: string;
  /** Whether a run of it is going now, and whose (local: the run lock). */
  readonly run?: string;
  /** How far the old home trails the new one while a revert is possible (doctype-copy's old database; online-alter's shows in `holds`). */
  readonly oldHome?: string;
}

export interface PageBackend {
  migrations(): Promise<MigrationView[]>;
  /**
   * Completes the pending approval the page showed (`seen`) through the same path as `ferry
   * approve`, or says why not: none pending, the request changed since, or refused for this caller.
   */
  decide(migrationId: string, step: string, decision: { approved: boolean; revert?: boolean; by: string; reason?: string }, seen: SeenRequest): Promise<DecisionOutcome>;
}

export interface PageRequest {
  readonly method: string;
  /** Path without the query. */
  readonly path: string;
  /** The form fields of a POST (application/x-www-form-urlencoded). */
  readonly form: Readonly<Record<string, string>>;
  /** The query of a GET. */
  readonly query?: Readonly<Record<string, string>>;
}

export interface PageCaller {
  /** Who the caller is, as the record will say it (an approver's name, never taken from the form). */
  readonly name: string;
  /** Whether the caller may decide (the `approvers` group on AWS; whoever reaches 127.0.0.1 locally). */
  readonly mayDecide: boolean;
}

export interface PageResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface PageOptions {
  /** Where the page runs, for its title: "local (state dir .ferry)" or the deployment's name. */
  readonly where: string;
  /** A secret of this server the form must carry back: a page of another site cannot post a decision. */
  readonly formKey: string;
  /** Prefix of every link and form action (an API stage, or ""). */
  readonly base?: string;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const SECURITY_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const CSS = `
body{font:16px/1.45 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem 1.5rem;color:#1b1b1b;background:#fff}
h1{font-size:1.4rem;margin:.2rem 0 1rem}h2{font-size:1.15rem;margin:1.6rem 0 .4rem}h3{font-size:1rem;margin:1rem 0 .3rem}
table{border-collapse:collapse;width:100%;margin:.4rem 0}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #ddd;vertical-align:top}
th{font-weight:600;background:#f4f4f4}caption{text-align:left;font-weight:600;padding:.3rem 0}
section.pending{border:2px solid #b35c00;border-radius:6px;padding:.4rem 1rem 1rem;margin:1rem 0;background:#fffaf3}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.4rem 0}dt{font-weight:600}dd{margin:0}
.status{padding:.6rem 1rem;border-radius:6px;margin:1rem 0;font-weight:600}.ok{background:#e7f5e9;border:1px solid #2e7d32}.bad{background:#fdecea;border:1px solid #c62828}
form{display:inline-block;margin:.6rem 1.2rem .2rem 0;vertical-align:top}label{display:block;font-weight:600;margin-bottom:.2rem}
textarea{width:22rem;max-width:100%;min-height:3.5rem;font:inherit}
button{font:inherit;font-weight:600;padding:.45rem 1.1rem;border-radius:4px;border:1px solid #333;cursor:pointer}
button.approve{background:#1b5e20;color:#fff;border-color:#1b5e20}button.reject{background:#fff;color:#b71c1c;border-color:#b71c1c}
code{background:#f4f4f4;padding:0 .2rem}.muted{color:#555}`;

function page(title: string, where: string, caller: PageCaller, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)}</title><style>${CSS}</style></head>
<body><header><h1>ferry approvals <span class="muted">· ${escapeHtml(where)}</span></h1><p class="muted">Signed in as <strong>${escapeHtml(caller.name)}</strong>${caller.mayDecide ? '' : ' (not an approver: you can look, not decide)'}</p></header>
<main>${body}</main></body></html>`;
}

function factsList(facts: readonly Fact[]): string {
  return `<dl>${facts.map((f) => `<dt>${escapeHtml(f.label)}</dt><dd>${escapeHtml(f.value)}</dd>`).join('')}</dl>`;
}

function pendingSection(m: MigrationView, p: PendingView, caller: PageCaller, o: PageOptions): string {
  const id = `${m.migrationId}-${p.step}`;
  const flags = Object.entries(p.flags);
  // The form names the request it was shown for: a decision posted for another one is refused.
  const field = (name: string, value: string) => `<input type="hidden" name="${name}" value="${escapeHtml(value)}">`;
  const hidden = (extra: string) =>
    field('migrationId', m.migrationId) + field('step', p.step) + field('execution', p.execution) + field('requestedAt', p.since ?? '') + field('formKey', o.formKey) + field('decision', extra);
  const decide = caller.mayDecide
    ? `<form method="post" action="${o.base ?? ''}/decide">${hidden('approve')}<button class="approve" type="submit">Approve ${escapeHtml(p.step)}</button></form>` +
      `<form method="post" action="${o.base ?? ''}/decide">${hidden('reject')}<label for="reason-${escapeHtml(id)}">Reason for rejecting (required)</label>` +
      `<textarea id="reason-${escapeHtml(id)}" name="reason" required maxlength="${REASON_MAX}"></textarea><br><button class="reject" type="submit">Reject ${escapeHtml(p.step)}</button></form>` +
      (p.mayRevert
        ? `<form method="post" action="${o.base ?? ''}/decide">${hidden('revert')}<label for="revert-${escapeHtml(id)}">Reason for reverting (required): the application's writes since the cut-over go back to the old home, and the cut-over flags are set back</label>` +
          `<textarea id="revert-${escapeHtml(id)}" name="reason" required maxlength="${REASON_MAX}"></textarea><br><button class="reject" type="submit">Revert the cut-over</button></form>`
        : '')
    : '<p class="muted">Only members of the approvers group can decide.</p>';
  return `<section class="pending" aria-labelledby="h-${escapeHtml(id)}"><h3 id="h-${escapeHtml(id)}">Approval pending: ${escapeHtml(p.step)} of ${escapeHtml(m.migrationId)}</h3>
${factsList([
    { label: 'asked for', value: p.since ?? 'unknown' },
    { label: 'execution', value: p.execution },
    { label: 'started by', value: p.startedBy ?? 'unknown' },
    { label: 'started at', value: p.startedAt ?? 'unknown' },
    ...p.facts,
    { label: 'flags this step sets', value: flags.length ? flags.map(([k, v]) => `${k}=${v}`).join(', ') : 'none' },
  ])}
${decide}</section>`;
}

function migrationSection(m: MigrationView, caller: PageCaller, o: PageOptions): string {
  const knobs = Object.entries(m.knobs);
  return `<section aria-labelledby="m-${escapeHtml(m.migrationId)}"><h2 id="m-${escapeHtml(m.migrationId)}">${escapeHtml(m.migrationId)} <span class="muted">(${escapeHtml(m.machine)})</span></h2>
${factsList([
    { label: 'phase', value: m.phase ?? 'unknown' },
    { label: 'progress', value: m.progress ?? 'unknown' },
    { label: 'throttle', value: m.throttle ?? 'not throttled' },
    { label: 'knobs', value: knobs.length ? knobs.map(([k, v]) => `${k}=${v}`).join(' ') : 'none set' },
    ...(m.run ? [{ label: 'run', value: m.run }] : []),
    ...(m.holds ? [{ label: 'on the live table', value: m.holds }] : []),
    ...(m.problem ? [{ label: 'could not read', value: m.problem }] : []),
  ])}
${m.pending.map((p) => pendingSection(m, p, caller, o)).join('\n')}</section>`;
}

type Outcome = { readonly result: 'approved' | 'rejected' | 'reverting' | 'none' | 'changed'; readonly migrationId: string; readonly step: string; readonly by: string };

/** The outcome a decision redirects with, signed with the form key: a link made elsewhere cannot put words on the page. */
function sealOutcome(outcome: Outcome, key: string): string {
  const body = Buffer.from(JSON.stringify(outcome)).toString('base64url');
  return `${body}.${createHmac('sha256', key).update(body).digest('base64url')}`;
}

function openOutcome(sealed: string | undefined, key: string): Outcome | null {
  const [body, mac] = (sealed ?? '').split('.');
  if (!body || !mac) return null;
  const want = createHmac('sha256', key).update(body).digest();
  const got = Buffer.from(mac, 'base64url');
  if (got.length !== want.length || !timingSafeEqual(new Uint8Array(got), new Uint8Array(want))) return null;
  try {
    return JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Outcome;
  } catch {
    return null;
  }
}

function result(outcome: Outcome | null): string {
  if (!outcome) return '';
  const { result: r, migrationId, step, by } = outcome;
  const text =
    r === 'approved' ? `Approved: ${step} of ${migrationId}, by ${by}. The migration goes on.`
    : r === 'rejected' ? `Rejected: ${step} of ${migrationId}, by ${by}. The execution stops as rejected.`
    : r === 'reverting' ? `Revert asked instead of the ${step} of ${migrationId}, by ${by}. The execution carries the application's writes back to the old home and sets the cut-over flags back.`
    : r === 'changed' ? `Nothing was decided: the ${step} request of ${migrationId} has changed since the page was shown (asked for again, or by another execution). Look again before deciding.`
    : `Nothing was decided: no approval "${step}" of ${migrationId} is pending (decided already, or not asked for yet).`;
  return `<p class="status ${r === 'approved' || r === 'rejected' || r === 'reverting' ? 'ok' : 'bad'}" role="status">${escapeHtml(text)}</p>`;
}

function problem(status: number, message: string, caller: PageCaller, o: PageOptions): PageResponse {
  return { status, headers: SECURITY_HEADERS, body: page('ferry approvals', o.where, caller, `<p class="status bad" role="alert">${escapeHtml(message)}</p><p><a href="${o.base ?? ''}/">Back to the approvals</a></p>`) };
}

async function listPage(outcome: Outcome | null, caller: PageCaller, backend: PageBackend, o: PageOptions): Promise<PageResponse> {
  const base = o.base ?? '';
  const migrations = await backend.migrations();
  const waiting = migrations.reduce((n, m) => n + m.pending.length, 0);
  const body = `${result(outcome)}<p>${waiting === 0 ? 'No approval is pending.' : `${waiting} approval${waiting === 1 ? ' is' : 's are'} pending.`} <a href="${base}/">Refresh</a></p>
${migrations.length ? migrations.map((m) => migrationSection(m, caller, o)).join('\n') : '<p class="muted">No migration is known here yet.</p>'}`;
  return { status: 200, headers: SECURITY_HEADERS, body: page('ferry approvals', o.where, caller, body) };
}

/**
 * Answers one request of the page: GET / (the list), POST /decide (a decision, answered with a
 * 303 to the list with its outcome on top, so reloading the answer does not post it again),
 * anything else 404.
 */
export async function handlePage(req: PageRequest, caller: PageCaller, backend: PageBackend, o: PageOptions): Promise<PageResponse> {
  if (req.method === 'GET' && (req.path === '/' || req.path === '')) return listPage(openOutcome(req.query?.outcome, o.formKey), caller, backend, o);
  if (req.method === 'POST' && req.path === '/decide') {
    if (req.form.formKey !== o.formKey) return problem(403, 'This form did not come from this page (or the page is stale): reload it and decide again.', caller, o);
    if (!caller.mayDecide) return problem(403, `${caller.name} is not an approver: only members of the approvers group can decide.`, caller, o);
    const { migrationId, step, decision, execution, requestedAt } = req.form;
    const reason = (req.form.reason ?? '').trim();
    if (!migrationId || !step || !execution || (decision !== 'approve' && decision !== 'reject' && decision !== 'revert')) return problem(400, 'The form lacks the migration, the step, the request or the decision: reload the page and decide again.', caller, o);
    try {
      checkApprovalName(migrationId, step);
    } catch (err) {
      if (!(err instanceof InvalidInput)) throw err;
      return problem(400, `The form names no approval this page shows (${err.message}): reload the page and decide again.`, caller, o);
    }
    if (decision !== 'approve' && !reason) return problem(400, `A ${decision === 'revert' ? 'revert' : 'rejection'} needs a reason, so the record says why: go back and write one.`, caller, o);
    if (reason.length > REASON_MAX) return problem(400, `The reason is longer than ${REASON_MAX} characters.`, caller, o);
    const approved = decision === 'approve';
    const outcome = await backend.decide(migrationId, step, { approved, ...(decision === 'revert' ? { revert: true } : {}), by: caller.name, ...(approved ? {} : { reason }) }, { execution, ...(requestedAt ? { requestedAt } : {}) });
    if (outcome.status === 'invalid') return problem(400, `Nothing was decided: ${outcome.message}.`, caller, o);
    if (outcome.status === 'refused') return problem(403, outcome.message, caller, o);
    const shown: Outcome = { result: outcome.status === 'decided' ? (approved ? 'approved' : decision === 'revert' ? 'reverting' : 'rejected') : outcome.status, migrationId, step, by: caller.name };
    return { status: 303, headers: { location: `${o.base ?? ''}/?outcome=${sealOutcome(shown, o.formKey)}`, 'cache-control': 'no-store' }, body: '' };
  }
  return problem(404, `Nothing here (${req.method} ${req.path}).`, caller, o);
}
