/**
 * The decision path on AWS against the promises of README.md's "Who can complete an approval",
 * "Separation of duties" and "Security model", with the AWS calls mocked (aws-sdk-client-mock).
 */
import { CloudTrailClient, LookupEventsCommand } from '@aws-sdk/client-cloudtrail';
import { DescribeExecutionCommand, SendTaskFailureCommand, SendTaskSuccessCommand, SFNClient } from '@aws-sdk/client-sfn';
import { DeleteParameterCommand, GetParameterCommand, GetParametersByPathCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { AwsApprovals } from '../../../lambdas/adapters/approvals-aws.ts';
import { startedBy } from '../../../lambdas/adapters/identity.ts';
import { handleDecide, type SignedEvent } from '../../../lambdas/approvals/decide-endpoint.ts';

const ACCOUNT = '123456789012';
const MACHINE = `arn:aws:states:eu-west-1:${ACCOUNT}:stateMachine:ferry-production-table-copy`;
const EXEC = `${MACHINE.replace('stateMachine', 'execution')}:csmh-1`;
const EXEC_2 = `${MACHINE.replace('stateMachine', 'execution')}:csmh-2`;
const APPROVERS = `arn:aws:iam::${ACCOUNT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_FerryApprovers_0123456789abcdef`;
const session = (role: string, who: string) => `arn:aws:sts::${ACCOUNT}:assumed-role/${role}/${who}`;
const approver = (who: string) => session('AWSReservedSSO_FerryApprovers_0123456789abcdef', who);
const operator = (who: string) => session('AWSReservedSSO_FerryOperators_77aa', who);
const TOKEN = '/ferry-production/csmh/approvals/cutover';

const ssm = mockClient(SSMClient);
const sfn = mockClient(SFNClient);
const trail = mockClient(CloudTrailClient);

function signed(principal: string, body: unknown): SignedEvent {
  return { body: JSON.stringify(body), requestContext: { authorizer: { iam: { userArn: principal, accountId: ACCOUNT } } } };
}

/** A CloudTrail StartExecution event as LookupEvents returns it. */
function startEvent(who: string, executionArn: string, at: string) {
  return { EventName: 'StartExecution', EventTime: new Date(at), CloudTrailEvent: JSON.stringify({ eventTime: at, eventName: 'StartExecution', responseElements: { executionArn, startDate: at }, userIdentity: { arn: who } }) };
}

describe('the decision endpoint: separation of duties and its record', () => {
  const logged: { message: string; entry: Record<string, unknown> }[] = [];
  const ports = () => {
    const sfnClient = new SFNClient({ region: 'eu-west-1' });
    return {
      approvals: new AwsApprovals(new SSMClient({ region: 'eu-west-1' }), sfnClient, '/ferry-production'),
      deployment: 'ferry-production',
      starterOf: (execution: string) => startedBy(sfnClient, new CloudTrailClient({ region: 'eu-west-1' }), execution, async () => false),
      log: (message: string, entry: Record<string, unknown>) => logged.push({ message, entry }),
    };
  };
  const request = (execution: string, token: string, requestedAt: string) => ({ token, execution, machine: 'table-copy', requestedAt, separateFromStarter: true, summary: null });

  beforeEach(() => {
    ssm.reset();
    sfn.reset();
    trail.reset();
    logged.length = 0;
    ssm.on(GetParametersByPathCommand).resolves({ Parameters: [{ Name: TOKEN }] });
    ssm.on(DeleteParameterCommand).resolves({});
    sfn.on(DescribeExecutionCommand).callsFake((input: { executionArn: string }) => ({
      executionArn: input.executionArn,
      stateMachineArn: MACHINE,
      status: 'RUNNING',
      startDate: new Date('2026-12-01T08:00:00Z'),
      input: JSON.stringify({ migrationId: 'csmh' }),
    }));
    sfn.on(SendTaskSuccessCommand).resolves({});
    sfn.on(SendTaskFailureCommand).resolves({});
  });

  it('separation of duties: the starter is whoever called StartExecution first, not a later idempotent StartExecution of the same name and input by someone else', async () => {
    // alice starts csmh-1 (as an operator). Within a minute bob (another operator) repeats the same
    // StartExecution (same name, same input: DescribeExecution shows both to any operator); Step
    // Functions answers a Standard workflow's repeat with the running execution's ARN, and
    // CloudTrail records bob's call with that executionArn too. LookupEvents lists newest first.
    ssm.on(GetParameterCommand, { Name: TOKEN, WithDecryption: true }).callsFake(() => ({ Parameter: { Value: JSON.stringify(request(EXEC, 'task-token-1', '2026-12-01T09:00:00.000Z')) } }));
    trail.on(LookupEventsCommand).resolves({
      Events: [startEvent(operator('bob'), EXEC, '2026-12-01T08:00:40Z'), startEvent(operator('alice'), EXEC, '2026-12-01T08:00:00Z')],
    });
    const out = await handleDecide(signed(approver('alice'), { migrationId: 'csmh', step: 'cutover', decision: 'approve', execution: EXEC }), APPROVERS, ports());
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
    expect(out.statusCode).toBe(403);
  });

  it('separation of duties: the execution checked against the starter is the one whose token is completed', async () => {
    // The pending cut-over is bob's csmh-1 when takeDecision looks (alice did not start it: go);
    // by the time AwsApprovals.decide reads the token, alice's own csmh-2 has asked for the same
    // step (one SSM name per migration id and step). alice named csmh-2 (--execution), which is
    // what decide compares with; the separation check was made against csmh-1.
    let reads = 0;
    ssm.on(GetParameterCommand, { Name: TOKEN, WithDecryption: true }).callsFake(() => {
      reads++;
      const value = reads === 1 ? request(EXEC, 'task-token-1', '2026-12-01T09:00:00.000Z') : request(EXEC_2, 'task-token-2', '2026-12-01T09:00:05.000Z');
      return { Parameter: { Value: JSON.stringify(value) } };
    });
    trail.on(LookupEventsCommand).callsFake(() => ({
      Events: [startEvent(operator('bob'), EXEC, '2026-12-01T08:00:00Z'), startEvent(operator('alice'), EXEC_2, '2026-12-01T08:00:10Z')],
    }));
    const out = await handleDecide(signed(approver('alice'), { migrationId: 'csmh', step: 'cutover', decision: 'approve', execution: EXEC_2 }), APPROVERS, ports());
    const completed = sfn.commandCalls(SendTaskSuccessCommand).map((c) => c.args[0].input.taskToken);
    expect(completed).not.toContain('task-token-2');
    expect(out.statusCode).not.toBe(200);
  });

  it('audit: a decision that was taken (SendTaskSuccess succeeded) is logged even when forgetting its token fails afterwards', async () => {
    let reads = 0;
    ssm.on(GetParameterCommand, { Name: TOKEN, WithDecryption: true }).callsFake(() => {
      reads++;
      // The third read is forget()'s, after the task was completed: SSM throttles it.
      if (reads >= 3) throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
      return { Parameter: { Value: JSON.stringify(request(EXEC, 'task-token-1', '2026-12-01T09:00:00.000Z')) } };
    });
    trail.on(LookupEventsCommand).resolves({ Events: [startEvent(operator('alice'), EXEC, '2026-12-01T08:00:00Z')] });
    await handleDecide(signed(approver('bob'), { migrationId: 'csmh', step: 'cutover', decision: 'approve', execution: EXEC }), APPROVERS, ports()).catch(() => undefined);
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(1);
    expect(logged.map((l) => l.entry)).toContainEqual(expect.objectContaining({ migrationId: 'csmh', step: 'cutover', principal: approver('bob'), execution: EXEC }));
  });

  it('audit: an attempt that fails while checking who started the execution (CloudTrail throttled) is still logged', async () => {
    ssm.on(GetParameterCommand, { Name: TOKEN, WithDecryption: true }).callsFake(() => ({ Parameter: { Value: JSON.stringify(request(EXEC, 'task-token-1', '2026-12-01T09:00:00.000Z')) } }));
    trail.on(LookupEventsCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    await handleDecide(signed(approver('alice'), { migrationId: 'csmh', step: 'cutover', decision: 'approve', execution: EXEC }), APPROVERS, ports()).catch(() => undefined);
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
    expect(logged.map((l) => l.entry)).toContainEqual(expect.objectContaining({ migrationId: 'csmh', step: 'cutover', principal: approver('alice') }));
  });
});
