import { takeDecision, type DecisionOutcome, type DecisionPorts } from './decide.ts';
import { roleOfSession } from '../adapters/identity.ts';

/**
 * The decision endpoint: `POST /api/decide` on the approval page's HTTP API, with IAM
 * authorization, so API Gateway has checked the caller's SigV4 signature (and, by the approvers'
 * policy, their MFA) before this runs. `ferry approve --aws` calls it. The caller must be a
 * session of the approvers' role; who they are comes from the request context, never the body.
 */

/** The HTTP API event (payload 2.0) of an IAM-authorized route, as much as the endpoint reads. */
export interface SignedEvent {
  readonly body?: string;
  readonly isBase64Encoded?: boolean;
  readonly requestContext: { readonly authorizer?: { readonly iam?: { readonly userArn?: string; readonly accountId?: string } } };
}

export interface EndpointResult {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** The approvers' role, by ARN (`arn:aws:iam::<account>:role[/path]/<name>`): its name and account. */
export function roleNamed(roleArn: string): { account: string; name: string } {
  const m = /^arn:aws[a-z-]*:iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/.exec(roleArn);
  if (!m) throw new Error(`${roleArn} is not an IAM role ARN`);
  return { account: m[1]!, name: m[2]! };
}

const STATUS: Record<DecisionOutcome['status'], number> = { decided: 200, none: 404, changed: 409, refused: 403, invalid: 400 };

function answer(statusCode: number, body: unknown): EndpointResult {
  return { statusCode, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' }, body: JSON.stringify(body) };
}

export async function handleDecide(event: SignedEvent, approversRoleArn: string, ports: DecisionPorts): Promise<EndpointResult> {
  const principal = event.requestContext.authorizer?.iam?.userArn;
  const approvers = roleNamed(approversRoleArn);
  if (!principal || roleOfSession(principal) !== approvers.name || event.requestContext.authorizer?.iam?.accountId !== approvers.account) {
    ports.log('not decided (refused): the caller is not a session of the approvers role', { principal: principal ?? null, outcome: 'refused' });
    return answer(403, { status: 'refused', message: `only sessions of ${approversRoleArn} may decide; ${principal ?? 'an unsigned caller'} is not one. Nothing was decided.` });
  }
  let asked: { migrationId?: unknown; step?: unknown; decision?: unknown; reason?: unknown; execution?: unknown; requestedAt?: unknown };
  try {
    const text = event.body ? (event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body) : '';
    asked = JSON.parse(text) as typeof asked;
    if (typeof asked !== 'object' || asked === null) throw new Error('not an object');
  } catch {
    return answer(400, { status: 'invalid', message: 'the request body is not a JSON object: {"migrationId", "step", "decision": "approve"|"reject"|"revert", "reason"?, "execution"?}' });
  }
  const { migrationId, step, decision, reason, execution, requestedAt } = asked;
  if (typeof migrationId !== 'string' || typeof step !== 'string' || (decision !== 'approve' && decision !== 'reject' && decision !== 'revert') || (reason !== undefined && typeof reason !== 'string') || (execution !== undefined && typeof execution !== 'string') || (requestedAt !== undefined && typeof requestedAt !== 'string')) {
    return answer(400, { status: 'invalid', message: 'name "migrationId" and "step" (strings) and "decision" ("approve", "reject" or "revert"); "reason", "execution" and "requestedAt" are strings when given' });
  }
  const outcome = await takeDecision(
    { migrationId, step, approved: decision === 'approve', ...(decision === 'revert' ? { revert: true } : {}), ...(reason ? { reason } : {}), ...(execution ? { seen: { execution, ...(requestedAt ? { requestedAt } : {}) } } : {}) },
    { name: principal, principal },
    ports,
  );
  return answer(STATUS[outcome.status], { ...outcome, by: principal });
}
