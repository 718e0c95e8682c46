/**
 * Taking a decision on AWS: the one path by which a cut-over or a cleanup is approved or
 * rejected, used by the approval page and by the decision endpoint `ferry approve --aws` calls.
 * Both run as functions of the stack; no person's role can read a callback token or complete
 * it. The path checks the request named, that it is still the one the decider saw, and, when
 * the deployment separates duties, that the person approving did not start the execution.
 * Every attempt is logged: who, which migration and step, which execution, and what came of it.
 */
import { InvalidInput, RequestChanged } from '../core/errors.ts';
import { checkApprovalName } from '../core/input-parts.ts';
import { REVERTIBLE_MACHINES, type ApprovalDecider, type SeenRequest } from '../core/ports/approvals.ts';
import { personOf, unknownPerson } from '../adapters/identity.ts';
import { sameRequest } from '../adapters/approvals.ts';

export const REASON_MAX = 1000;

export interface DecisionAsked {
  readonly migrationId: string;
  readonly step: string;
  readonly approved: boolean;
  /** Not approved: revert instead (the cleanup approval of a machine in REVERTIBLE_MACHINES; a reason is required). */
  readonly revert?: boolean;
  readonly reason?: string;
  /** The request the decider looked at; a decision for another one is refused. */
  readonly seen?: SeenRequest;
}

export interface Decider {
  /** As the record names them. */
  readonly name: string;
  /** The AWS principal that signed the request, when it was signed (the decision endpoint). */
  readonly principal?: string;
}

export type DecisionOutcome =
  | { readonly status: 'decided'; readonly execution: string }
  | { readonly status: 'none'; readonly pending: readonly { readonly migrationId: string; readonly step: string }[] }
  | { readonly status: 'changed'; readonly message: string }
  | { readonly status: 'refused'; readonly message: string }
  | { readonly status: 'invalid'; readonly message: string };

export interface DecisionPorts {
  readonly approvals: ApprovalDecider & {
    pendingRequest(migrationId: string, step: string): Promise<{ execution: string; separateFromStarter: boolean; requestedAt: string | null; machine: string | null } | null>;
  };
  /** The deployment's name, for messages. */
  readonly deployment: string;
  /** Who started the execution: each principal CloudTrail says did (following only hand-overs the executions' own histories show). */
  readonly starterOf: (execution: string) => Promise<readonly string[]>;
  readonly log: (message: string, entry: Record<string, unknown>) => void;
}

/** A state dir's decisions (`ferry approve`, the local page): whoever reaches them decides; no duties to separate, nothing to log beyond the record. */
export function localDecisionPorts(approvals: DecisionPorts['approvals']): DecisionPorts {
  return { approvals, deployment: 'local', starterOf: async () => [], log: () => {} };
}

/** The checks every decision passes, in order; the first that fails is the outcome. */
async function check(asked: DecisionAsked, decider: Decider, ports: DecisionPorts): Promise<DecisionOutcome | { readonly status: 'go'; readonly execution: string; readonly request: SeenRequest }> {
  try {
    checkApprovalName(asked.migrationId, asked.step);
  } catch (err) {
    if (err instanceof InvalidInput) return { status: 'invalid', message: err.message };
    throw err;
  }
  const reason = asked.reason?.trim() ?? '';
  const what = asked.revert ? 'a revert' : 'a rejection';
  if (asked.revert && asked.step !== 'cleanup') return { status: 'invalid', message: 'a revert answers the cleanup approval (step cleanup), once the cut-over is done' };
  if (!asked.approved && !reason) return { status: 'invalid', message: `${what} needs a reason, so the record says why` };
  if (reason.length > REASON_MAX) return { status: 'invalid', message: `the reason is longer than ${REASON_MAX} characters` };
  const pending = await ports.approvals.pendingRequest(asked.migrationId, asked.step);
  if (!pending) return { status: 'none', pending: await pendingSteps(ports) };
  if (asked.revert && !REVERTIBLE_MACHINES.includes(pending.machine ?? '')) {
    return { status: 'invalid', message: `revert is not available for ${pending.machine ?? 'this machine'} (only ${REVERTIBLE_MACHINES.join(', ')} keeps what the application writes after the cut-over so it can be carried back); nothing was decided` };
  }
  if (asked.seen && !sameRequest(pending, asked.seen)) {
    return { status: 'changed', message: `the ${asked.step} request of ${asked.migrationId} has changed since it was shown (now ${pending.execution}, asked for at ${pending.requestedAt})` };
  }
  // The token completed is this very request's: if another replaced it meanwhile, nothing is decided.
  const go = { status: 'go', execution: pending.execution, request: { execution: pending.execution, requestedAt: pending.requestedAt } } as const;
  if (!asked.approved || !pending.separateFromStarter) return go;
  const nothing = 'Nothing was approved.';
  if (!decider.principal) {
    return { status: 'refused', message: `${ports.deployment} separates duties, and a page sign-in does not say which AWS principal started an execution: an approver who did not start it decides with \`npx ferry approve ${asked.migrationId} --step ${asked.step} --aws\`. ${nothing}` };
  }
  const starters = await ports.starterOf(pending.execution);
  if (starters.length === 0) return { status: 'refused', message: `${ports.deployment} separates duties, and CloudTrail does not (yet) say who started ${pending.execution}. Try again in a few minutes, or ask another approver. ${nothing}` };
  const who = personOf(decider.principal);
  if (!who) return { status: 'refused', message: `${ports.deployment} separates duties, and ${unknownPerson(decider.principal)}: approve as an IAM Identity Center user. ${nothing}` };
  for (const starter of starters) {
    const started = personOf(starter);
    if (!started) return { status: 'refused', message: `${ports.deployment} separates duties, and ${pending.execution} was started by ${unknownPerson(starter)}; ferry cannot tell whether that was you. Executions that need approving are started by people (IAM Identity Center users or IAM users). ${nothing}` };
    if (who === started) return { status: 'refused', message: `${decider.principal} started ${pending.execution} (as ${starter}); ${ports.deployment} separates duties: another approver must approve ${asked.step}. ${nothing}` };
  }
  return go;
}

/** Takes one decision, or says why not; logs the attempt either way, one that failed too. */
export async function takeDecision(asked: DecisionAsked, decider: Decider, ports: DecisionPorts): Promise<DecisionOutcome> {
  let outcome: DecisionOutcome;
  try {
    outcome = await attempt(asked, decider, ports);
  } catch (err) {
    ports.log(`not decided (error): ${asked.step} of ${asked.migrationId}`, { ...entryOf(asked, decider), execution: asked.seen?.execution ?? null, outcome: 'error', why: `${(err as Error).name}: ${(err as Error).message}` });
    throw err;
  }
  ports.log(outcome.status === 'decided' ? `${asked.revert ? 'revert asked' : asked.approved ? 'approved' : 'rejected'}: ${asked.step} of ${asked.migrationId}` : `not decided (${outcome.status}): ${asked.step} of ${asked.migrationId}`, {
    ...entryOf(asked, decider),
    execution: outcome.status === 'decided' ? outcome.execution : (asked.seen?.execution ?? null),
    outcome: outcome.status,
    ...('message' in outcome ? { why: outcome.message } : {}),
  });
  return outcome;
}

async function attempt(asked: DecisionAsked, decider: Decider, ports: DecisionPorts): Promise<DecisionOutcome> {
  const checked = await check(asked, decider, ports);
  if (checked.status !== 'go') return checked;
  try {
    const reason = asked.reason?.trim();
    const done = await ports.approvals.decide(asked.migrationId, asked.step, { approved: asked.approved && !asked.revert, ...(asked.revert ? { revert: true } : {}), by: decider.name, ...(reason ? { reason } : {}) }, checked.request);
    return done ? { status: 'decided', execution: checked.execution } : { status: 'none', pending: await pendingSteps(ports) };
  } catch (err) {
    if (!(err instanceof RequestChanged)) throw err;
    return { status: 'changed', message: err.message };
  }
}

/** What every log line of a decision says: what was asked, and by whom. */
function entryOf(asked: DecisionAsked, decider: Decider): Record<string, unknown> {
  return {
    decision: asked.revert ? 'revert' : asked.approved ? 'approve' : 'reject',
    migrationId: asked.migrationId,
    step: asked.step,
    by: decider.name,
    ...(decider.principal ? { principal: decider.principal } : {}),
    ...(asked.reason ? { reason: asked.reason.slice(0, REASON_MAX) } : {}),
  };
}

/** What is pending, by migration and step only (a local request record holds its token). */
async function pendingSteps(ports: DecisionPorts): Promise<{ migrationId: string; step: string }[]> {
  return (await ports.approvals.pending()).map((p) => ({ migrationId: p.migrationId, step: p.step }));
}
