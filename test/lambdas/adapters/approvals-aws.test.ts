import { SendTaskFailureCommand, SendTaskSuccessCommand, SFNClient, TaskTimedOut } from '@aws-sdk/client-sfn';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { DeleteParameterCommand, GetParameterCommand, GetParametersByPathCommand, ParameterNotFound, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { approvalMessage, approvalParameterName, AwsApprovals, requestAwsApproval } from '../../../lambdas/adapters/approvals-aws.ts';

const ssm = mockClient(SSMClient);
const sns = mockClient(SNSClient);
const sfn = mockClient(SFNClient);
const clients = { ssm: new SSMClient({ region: 'eu-west-1' }), sns: new SNSClient({ region: 'eu-west-1' }), sfn: new SFNClient({ region: 'eu-west-1' }) };
const req = { migrationId: 'csmh-extended', machine: 'table-copy', step: 'cutover', token: 'AQCEAAAAKgAAAAMAAAAA-secret-token', execution: 'arn:aws:states:eu-west-1:123456789012:execution:ferry-table-copy:csmh-extended-1', summary: { rowsCopied: '2147483647' } };

describe('approvals on AWS', () => {
  beforeEach(() => {
    ssm.reset();
    sns.reset();
    sfn.reset();
  });

  it('forgets the tokens of an execution that ended, and only those, under the deployment\'s root', async () => {
    const other = 'arn:aws:states:eu-west-1:123456789012:execution:ferry-staging-table-copy:other';
    ssm.on(GetParametersByPathCommand, { Path: '/ferry-staging' }).resolves({
      Parameters: [
        { Name: '/ferry-staging/csmh-extended/approvals/cutover', Value: JSON.stringify({ token: 't1', execution: req.execution }) },
        { Name: '/ferry-staging/m2/approvals/cleanup', Value: JSON.stringify({ token: 't2', execution: other }) },
        { Name: '/ferry-staging/csmh-extended/flags/X', Value: 'true' },
      ],
    });
    ssm.on(DeleteParameterCommand).resolves({});
    const removed = await new AwsApprovals(clients.ssm, clients.sfn, '/ferry-staging').forgetExecution(req.execution);
    expect(removed).toEqual(['/ferry-staging/csmh-extended/approvals/cutover']);
    expect(ssm.commandCalls(DeleteParameterCommand).map((c) => c.args[0].input.Name)).toEqual(['/ferry-staging/csmh-extended/approvals/cutover']);
  });

  it('records whether the starter may approve, for ferry approve to check', async () => {
    ssm.on(PutParameterCommand).resolves({});
    sns.on(PublishCommand).resolves({ MessageId: '1' });
    await requestAwsApproval(req, { ssm: clients.ssm, sns: clients.sns, topicArn: 't', keyId: 'k', root: '/ferry-production', separateFromStarter: true });
    const put = ssm.commandCalls(PutParameterCommand)[0]!.args[0].input;
    expect(put.Name).toBe('/ferry-production/csmh-extended/approvals/cutover');
    ssm.on(GetParameterCommand).resolves({ Parameter: { Value: put.Value } });
    expect(await new AwsApprovals(clients.ssm, clients.sfn, '/ferry-production').pendingRequest('csmh-extended', 'cutover')).toEqual({ execution: req.execution, separateFromStarter: true, requestedAt: expect.any(String), summary: req.summary ?? null, machine: req.machine ?? null });
  });

  it('keeps the token as a SecureString under the key, and tells approvers the exact command without the token', async () => {
    ssm.on(PutParameterCommand).resolves({});
    sns.on(PublishCommand).resolves({ MessageId: '1' });
    await requestAwsApproval(req, { ssm: clients.ssm, sns: clients.sns, topicArn: 'arn:aws:sns:eu-west-1:123456789012:approvals', keyId: 'arn:aws:kms:eu-west-1:123456789012:key/k', approvers: 'arn:aws:iam::123456789012:role/ferry-approvers' });
    const put = ssm.commandCalls(PutParameterCommand)[0]!.args[0].input;
    expect(put).toMatchObject({ Name: '/ferry/csmh-extended/approvals/cutover', Type: 'SecureString', KeyId: 'arn:aws:kms:eu-west-1:123456789012:key/k', Overwrite: true });
    expect(JSON.parse(put.Value!).token).toBe(req.token);
    const published = sns.commandCalls(PublishCommand)[0]!.args[0].input;
    expect(published.Subject).toBe('ferry: approve cutover of csmh-extended');
    expect(published.Message).toContain(`npx ferry approve csmh-extended --step cutover --execution ${req.execution} --aws`);
    expect(published.Message).toContain('--reject --reason');
    expect(published.Message).toContain(req.execution);
    expect(published.Message).toContain('Who approves: anyone who can assume arn:aws:iam::123456789012:role/ferry-approvers');
    expect(published.Message).not.toContain(req.token);
  });

  it('approves: the token from SSM, SendTaskSuccess, then the token is gone', async () => {
    ssm.on(GetParameterCommand, { Name: approvalParameterName('csmh-extended', 'cutover'), WithDecryption: true }).resolves({ Parameter: { Value: JSON.stringify({ token: req.token }) } });
    sfn.on(SendTaskSuccessCommand).resolves({});
    ssm.on(DeleteParameterCommand).resolves({});
    expect(await new AwsApprovals(clients.ssm, clients.sfn).decide('csmh-extended', 'cutover', { approved: true, by: 'alice' })).toBe(true);
    const sent = sfn.commandCalls(SendTaskSuccessCommand)[0]!.args[0].input;
    expect(sent.taskToken).toBe(req.token);
    expect(JSON.parse(sent.output!)).toMatchObject({ approved: true, by: 'alice' });
    expect(ssm.commandCalls(DeleteParameterCommand)).toHaveLength(1);
  });

  it('rejects with the error name the ASL catches, and the reason as cause', async () => {
    ssm.on(GetParameterCommand).resolves({ Parameter: { Value: JSON.stringify({ token: req.token }) } });
    sfn.on(SendTaskFailureCommand).resolves({});
    ssm.on(DeleteParameterCommand).resolves({});
    expect(await new AwsApprovals(clients.ssm, clients.sfn).decide('csmh-extended', 'cutover', { approved: false, by: 'bob', reason: 'exam week' })).toBe(true);
    expect(sfn.commandCalls(SendTaskFailureCommand)[0]!.args[0].input).toEqual({ taskToken: req.token, error: 'ApprovalRejected', cause: 'cutover rejected by bob: exam week' });
  });

  it('leaves a newer token alone: a continuation asked again while the old token was being completed', async () => {
    ssm.on(GetParameterCommand).resolvesOnce({ Parameter: { Value: JSON.stringify({ token: 'old' }) } }).resolves({ Parameter: { Value: JSON.stringify({ token: 'new' }) } });
    sfn.on(SendTaskSuccessCommand).rejects(new TaskTimedOut({ message: 'timed out', $metadata: {} }));
    expect(await new AwsApprovals(clients.ssm, clients.sfn).decide('m', 'cutover', { approved: true, by: 'a' })).toBe(false);
    expect(ssm.commandCalls(DeleteParameterCommand)).toHaveLength(0);
  });

  it('says no when nothing is pending, or when the execution stopped waiting', async () => {
    ssm.on(GetParameterCommand).rejectsOnce(new ParameterNotFound({ message: 'none', $metadata: {} }));
    expect(await new AwsApprovals(clients.ssm, clients.sfn).decide('m', 'cleanup', { approved: true, by: 'a' })).toBe(false);
    ssm.on(GetParameterCommand).resolves({ Parameter: { Value: JSON.stringify({ token: 'old' }) } });
    sfn.on(SendTaskSuccessCommand).rejects(new TaskTimedOut({ message: 'timed out', $metadata: {} }));
    ssm.on(DeleteParameterCommand).resolves({});
    expect(await new AwsApprovals(clients.ssm, clients.sfn).decide('m', 'cleanup', { approved: true, by: 'a' })).toBe(false);
    expect(ssm.commandCalls(DeleteParameterCommand)).toHaveLength(1);
  });

  it('writes a cleanup notice that says data will be removed', () => {
    expect(approvalMessage({ ...req, step: 'cleanup' }).body).toMatch(/cleanup \(data is removed from the old home\)/);
  });

  it('links the notice to the approval page, and keeps the command for those who use it', () => {
    const body = approvalMessage(req, undefined, 'https://abc.execute-api.eu-west-1.amazonaws.com/').body;
    expect(body).toContain('Decide on the approval page (sign in as a member of the approvers group): https://abc.execute-api.eu-west-1.amazonaws.com/');
    expect(body).toContain(`npx ferry approve ${req.migrationId} --step cutover --execution ${req.execution} --aws`);
    expect(approvalMessage(req).body).not.toContain('approval page');
  });
});
