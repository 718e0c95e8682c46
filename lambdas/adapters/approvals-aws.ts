import { SendTaskFailureCommand, SendTaskSuccessCommand, SFNClient } from '@aws-sdk/client-sfn';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { DeleteParameterCommand, GetParameterCommand, GetParametersByPathCommand, ParameterNotFound, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { ApprovalDecider, ApprovalDecision, ApprovalRequest, SeenRequest } from '../core/ports/approvals.ts';
import { RequestChanged } from '../core/errors.ts';
import { revertCause, sameRequest } from './approvals.ts';
import { checkApprovalName } from '../core/input-parts.ts';

/** Where a pending approval's callback token is kept: a SecureString only ferry's functions can decrypt. */
export function approvalParameterName(migrationId: string, step: string, root = '/ferry'): string {
  return `${root}/${migrationId}/approvals/${step}`;
}

const APPROVAL_NAME = /^\/[^/]+\/([^/]+)\/approvals\/([^/]+)$/;

/** The notification an approver receives: what, where, and the exact command. The token is not in it. */
export function approvalMessage(req: ApprovalRequest & { machine?: string }, approvers?: string, pageUrl?: string): { subject: string; body: string } {
  const what = req.step === 'cutover' ? 'the cut-over (the application switches to the new home)' : 'the cleanup (data is removed from the old home)';
  const subject = `ferry: approve ${req.step} of ${req.migrationId}`.slice(0, 99);
  const body = [
    `Migration ${req.migrationId}${req.machine ? ` (${req.machine})` : ''} is waiting for approval of ${what}.`,
    ...(approvers ? [`Who approves: anyone who can assume ${approvers}.`] : []),
    '',
    `Execution: ${req.execution}`,
    `Progress: ${JSON.stringify(req.summary ?? {})}`,
    '',
    ...(pageUrl ? [`Decide on the approval page (sign in as a member of the approvers group): ${pageUrl}`, 'Or, to approve:'] : ['To approve:']),
    `  npx ferry approve ${req.migrationId} --step ${req.step} --execution ${req.execution} --aws`,
    'To reject (the execution stops; nothing irreversible has happened):',
    `  npx ferry approve ${req.migrationId} --step ${req.step} --execution ${req.execution} --reject --reason "..." --aws`,
    'With --execution, the decision applies only to this execution\'s request: if it was asked for again since, nothing is decided.',
    '',
    "The callback token never leaves ferry's functions: a decision is taken through them, which check who decides. Unanswered, the request fails the execution safely after 7 days.",
  ].join('\n');
  return { subject, body };
}

/** The approval task's side on AWS: keep the token, tell the approvers. */
export async function requestAwsApproval(
  req: ApprovalRequest & { machine?: string },
  ports: { ssm: SSMClient; sns: SNSClient; topicArn: string; keyId: string; approvers?: string; root?: string; separateFromStarter?: boolean; pageUrl?: string },
): Promise<void> {
  await ports.ssm.send(
    new PutParameterCommand({
      Name: approvalParameterName(req.migrationId, req.step, ports.root),
      Type: 'SecureString',
      KeyId: ports.keyId,
      Overwrite: true,
      Value: JSON.stringify({ token: req.token, execution: req.execution, machine: req.machine, requestedAt: new Date().toISOString(), separateFromStarter: ports.separateFromStarter === true, summary: req.summary ?? null }),
    }),
  );
  const { subject, body } = approvalMessage(req, ports.approvers, ports.pageUrl);
  await ports.sns.send(new PublishCommand({ TopicArn: ports.topicArn, Subject: subject, Message: body }));
}

/** The approver's side on AWS: the token from SSM, then SendTaskSuccess or SendTaskFailure. */
export class AwsApprovals implements ApprovalDecider {
  constructor(
    private readonly ssm: SSMClient = new SSMClient({}),
    private readonly sfn: SFNClient = new SFNClient({}),
    /** The deployment's SSM root (`/ferry`, `/ferry-staging`). */
    private readonly root = '/ferry',
  ) {}

  /** The pending request of this step: which execution waits, and whether its starter may not approve it. Null when none waits. */
  async pendingRequest(migrationId: string, step: string): Promise<{ execution: string; separateFromStarter: boolean; requestedAt: string | null; summary: unknown; machine: string | null } | null> {
    try {
      const out = await this.ssm.send(new GetParameterCommand({ Name: approvalParameterName(migrationId, step, this.root), WithDecryption: true }));
      const value = JSON.parse(out.Parameter?.Value ?? '{}') as { execution?: string; separateFromStarter?: boolean; requestedAt?: string; summary?: unknown; machine?: string };
      return value.execution ? { execution: value.execution, separateFromStarter: value.separateFromStarter === true, requestedAt: value.requestedAt ?? null, summary: value.summary ?? null, machine: value.machine ?? null } : null;
    } catch (err) {
      if (err instanceof ParameterNotFound) return null;
      throw err;
    }
  }

  async decide(migrationId: string, step: string, decision: Omit<ApprovalDecision, 'at'>, seen?: SeenRequest): Promise<boolean> {
    checkApprovalName(migrationId, step);
    const Name = approvalParameterName(migrationId, step, this.root);
    let token: string;
    try {
      const out = await this.ssm.send(new GetParameterCommand({ Name, WithDecryption: true }));
      const value = JSON.parse(out.Parameter?.Value ?? '{}') as { token?: string; execution?: string; requestedAt?: string };
      token = value.token ?? '';
      if (seen && !sameRequest({ execution: value.execution ?? '', requestedAt: value.requestedAt ?? null }, seen)) {
        throw new RequestChanged(`the ${step} request of ${migrationId} has changed since it was shown (now ${value.execution}, asked for at ${value.requestedAt})`);
      }
    } catch (err) {
      if (err instanceof ParameterNotFound) return false;
      throw err;
    }
    const at = new Date().toISOString();
    try {
      if (decision.revert) {
        await this.sfn.send(new SendTaskFailureCommand({ taskToken: token, error: 'RevertRequested', cause: revertCause(step, decision) }));
      } else if (decision.approved) {
        await this.sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: JSON.stringify({ approved: true, by: decision.by, at }) }));
      } else {
        await this.sfn.send(new SendTaskFailureCommand({ taskToken: token, error: 'ApprovalRejected', cause: `${step} rejected by ${decision.by}: ${decision.reason ?? 'no reason given'}` }));
      }
    } catch (err) {
      const name = (err as Error).name;
      // The execution no longer waits for this token: it timed out, was stopped, or handed over.
      if (name === 'TaskTimedOut' || name === 'InvalidToken' || name === 'TaskDoesNotExist') {
        await this.forget(Name, token);
        return false;
      }
      throw err;
    }
    // The task is completed: the decision stands even if the token cannot be removed now (the
    // ExecutionEnded rule removes it when the execution ends; a second decision on it finds no task).
    await this.forget(Name, token).catch(() => undefined);
    return true;
  }

  /** Deletes the token's parameter unless a newer request (a continuation's) has replaced it meanwhile. */
  private async forget(Name: string, token: string): Promise<void> {
    try {
      const now = await this.ssm.send(new GetParameterCommand({ Name, WithDecryption: true }));
      if ((JSON.parse(now.Parameter?.Value ?? '{}') as { token?: string }).token !== token) return;
      await this.ssm.send(new DeleteParameterCommand({ Name }));
    } catch (err) {
      if (!(err instanceof ParameterNotFound)) throw err;
    }
  }

  async pending(): Promise<{ migrationId: string; step: string; since: Date | undefined }[]> {
    const out: { migrationId: string; step: string; since: Date | undefined }[] = [];
    let NextToken: string | undefined;
    do {
      const page = await this.ssm.send(new GetParametersByPathCommand({ Path: this.root, Recursive: true, WithDecryption: false, NextToken }));
      for (const p of page.Parameters ?? []) {
        const m = APPROVAL_NAME.exec(p.Name ?? '');
        if (m) out.push({ migrationId: m[1]!, step: m[2]!, since: p.LastModifiedDate });
      }
      NextToken = page.NextToken;
    } while (NextToken);
    return out;
  }

  /**
   * Removes the tokens an execution left when it ended without its approvals being given (it
   * failed, timed out, was stopped or rejected), so nothing shows them as pending any more.
   * Returns the parameters removed.
   */
  async forgetExecution(executionArn: string): Promise<string[]> {
    const removed: string[] = [];
    let NextToken: string | undefined;
    do {
      const page = await this.ssm.send(new GetParametersByPathCommand({ Path: this.root, Recursive: true, WithDecryption: true, NextToken }));
      for (const p of page.Parameters ?? []) {
        if (!p.Name || !APPROVAL_NAME.test(p.Name)) continue;
        let execution: string | undefined;
        try {
          execution = (JSON.parse(p.Value ?? '{}') as { execution?: string }).execution;
        } catch {
          continue;
        }
        if (execution !== executionArn) continue;
        try {
          await this.ssm.send(new DeleteParameterCommand({ Name: p.Name }));
          removed.push(p.Name);
        } catch (err) {
          if (!(err instanceof ParameterNotFound)) throw err;
        }
      }
      NextToken = page.NextToken;
    } while (NextToken);
    return removed;
  }
}
