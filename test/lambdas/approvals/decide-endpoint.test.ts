import { createServer } from 'node:http';
import { CloudTrailClient, LookupEventsCommand } from '@aws-sdk/client-cloudtrail';
import { DescribeExecutionCommand, SendTaskFailureCommand, SendTaskSuccessCommand, SFNClient } from '@aws-sdk/client-sfn';
import { DeleteParameterCommand, GetParameterCommand, GetParametersByPathCommand, ParameterNotFound, SSMClient } from '@aws-sdk/client-ssm';
import { SignatureV4 } from '@smithy/signature-v4';
import { Hash } from '@smithy/hash-node';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AwsApprovals } from '../../../lambdas/adapters/approvals-aws.ts';
import { startedBy } from '../../../lambdas/adapters/identity.ts';
import { handleDecide, type SignedEvent } from '../../../lambdas/approvals/decide-endpoint.ts';
import { askEndpoint, regionOfApi } from '../../../bin/cli/decide-client.ts';

const ACCOUNT = '123456789012';
const MACHINE = `arn:aws:states:eu-west-1:${ACCOUNT}:stateMachine:ferry-production-table-copy`;
const EXEC = `${MACHINE.replace('stateMachine', 'execution')}:csmh-1`;
const APPROVERS = `arn:aws:iam::${ACCOUNT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_FerryApprovers_0123456789abcdef`;
const session = (role: string, who: string) => `arn:aws:sts::${ACCOUNT}:assumed-role/${role}/${who}`;
const approver = (who: string) => session('AWSReservedSSO_FerryApprovers_0123456789abcdef', who);
const TOKEN = '/ferry-production/csmh/approvals/cutover';

const ssm = mockClient(SSMClient);
const sfn = mockClient(SFNClient);
const trail = mockClient(CloudTrailClient);

function signed(principal: string | undefined, body: unknown): SignedEvent {
  return { body: JSON.stringify(body), requestContext: { authorizer: principal ? { iam: { userArn: principal, accountId: ACCOUNT } } : {} } };
}

/** What the endpoint is given: the AWS clients (mocked), and a log that keeps what it is told. */
function decisionPorts(logged: { message: string; entry: Record<string, unknown> }[]) {
  const sfnClient = new SFNClient({ region: 'eu-west-1' });
  return {
    approvals: new AwsApprovals(new SSMClient({ region: 'eu-west-1' }), sfnClient, '/ferry-production'),
    deployment: 'ferry-production',
    starterOf: (execution: string) => startedBy(sfnClient, new CloudTrailClient({ region: 'eu-west-1' }), execution, async () => false),
    log: (message: string, entry: Record<string, unknown>) => logged.push({ message, entry }),
  };
}

describe('the decision endpoint (ferry approve --aws)', () => {
  const logged: { message: string; entry: Record<string, unknown> }[] = [];
  let request: Record<string, unknown>;
  let starter: string;
  const ports = () => decisionPorts(logged);
  beforeEach(() => {
    ssm.reset();
    sfn.reset();
    trail.reset();
    logged.length = 0;
    starter = session('AWSReservedSSO_FerryOperators_77aa', 'alice');
    request = { token: 'task-token-1', execution: EXEC, machine: 'table-copy', requestedAt: '2026-12-01T09:00:00.000Z', separateFromStarter: true, summary: null };
    ssm.on(GetParameterCommand, { Name: TOKEN, WithDecryption: true }).callsFake(() => ({ Parameter: { Value: JSON.stringify(request) } }));
    ssm.on(GetParametersByPathCommand).resolves({ Parameters: [{ Name: TOKEN }] });
    ssm.on(DeleteParameterCommand).resolves({});
    sfn.on(DescribeExecutionCommand).resolves({ executionArn: EXEC, stateMachineArn: MACHINE, status: 'RUNNING', startDate: new Date('2026-12-01T08:00:00Z'), input: JSON.stringify({ migrationId: 'csmh' }) });
    sfn.on(SendTaskSuccessCommand).resolves({});
    sfn.on(SendTaskFailureCommand).resolves({});
    trail.on(LookupEventsCommand).callsFake(() => ({ Events: [{ CloudTrailEvent: JSON.stringify({ responseElements: { executionArn: EXEC }, userIdentity: { arn: starter } }) }] }));
  });

  it('takes an approver\'s decision as the principal AWS signed for, and logs who, what and which execution', async () => {
    const out = await handleDecide(signed(approver('bob'), { migrationId: 'csmh', step: 'cutover', decision: 'approve' }), APPROVERS, ports());
    expect(out.statusCode).toBe(200);
    expect(JSON.parse(out.body)).toMatchObject({ status: 'decided', execution: EXEC, by: approver('bob') });
    const sent = sfn.commandCalls(SendTaskSuccessCommand)[0]!.args[0].input;
    expect(sent.taskToken).toBe('task-token-1');
    expect(JSON.parse(sent.output!)).toMatchObject({ approved: true, by: approver('bob') });
    expect(logged).toEqual([{ message: 'approved: cutover of csmh', entry: expect.objectContaining({ principal: approver('bob'), migrationId: 'csmh', step: 'cutover', execution: EXEC, outcome: 'decided' }) }]);
  });

  it('takes a revert only for the cleanup approval of a machine that can revert, with a reason', async () => {
    const cleanup = '/ferry-production/csmh/approvals/cleanup';
    const revert = (step: string, reason?: string) => handleDecide(signed(approver('bob'), { migrationId: 'csmh', step, decision: 'revert', ...(reason ? { reason } : {}) }), APPROVERS, ports());
    expect(JSON.parse((await revert('cutover', 'x')).body).message).toMatch(/a revert answers the cleanup approval/);
    // a request that does not say its machine (recorded before requests named it): no revert is taken for it
    ssm.on(GetParameterCommand, { Name: cleanup, WithDecryption: true }).resolves({ Parameter: { Value: JSON.stringify({ ...request, machine: undefined }) } });
    expect(JSON.parse((await revert('cleanup')).body).message).toMatch(/a revert needs a reason/);
    const refused = await revert('cleanup', 'slow');
    expect({ status: refused.statusCode, message: JSON.parse(refused.body).message }).toEqual({ status: 400, message: expect.stringMatching(/revert is not available for this machine/) });
    ssm.on(GetParameterCommand, { Name: cleanup, WithDecryption: true }).resolves({ Parameter: { Value: JSON.stringify({ ...request, machine: 'doctype-copy' }) } });
    expect((await revert('cleanup', 'slow')).statusCode).toBe(200);
    expect(sfn.commandCalls(SendTaskFailureCommand)[0]!.args[0].input).toMatchObject({ error: 'RevertRequested', cause: `revert instead of the cleanup, asked by ${approver('bob')}: slow` });
    expect(logged.at(-1)!.entry).toMatchObject({ decision: 'revert', step: 'cleanup', outcome: 'decided' });
  });

  it('refuses anyone who is not a session of the approvers role, whatever the body says', async () => {
    for (const who of [session('ferry-operators', 'bob'), session('AWSReservedSSO_FerryApprovers_0123456789abcdef-not', 'bob'), undefined]) {
      const out = await handleDecide(signed(who, { migrationId: 'csmh', step: 'cutover', decision: 'approve', by: approver('bob') }), APPROVERS, ports());
      expect(out.statusCode, String(who)).toBe(403);
    }
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
  });

  it('refuses the person who started the execution, under another role or not', async () => {
    const out = await handleDecide(signed(approver('alice'), { migrationId: 'csmh', step: 'cutover', decision: 'approve' }), APPROVERS, ports());
    expect(out.statusCode).toBe(403);
    expect(JSON.parse(out.body).message).toMatch(/started .*csmh-1.*separates duties: another approver must approve cutover\. Nothing was approved\./);
    // a rejection stops the execution: the starter may reject
    expect((await handleDecide(signed(approver('alice'), { migrationId: 'csmh', step: 'cutover', decision: 'reject', reason: 'not yet' }), APPROVERS, ports())).statusCode).toBe(200);
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
  });

  it('refuses when the starter is a role session whose name its assumer chose: it could have been the approver', async () => {
    starter = session('ferry-operators', 'ci-run-1');
    const out = await handleDecide(signed(approver('bob'), { migrationId: 'csmh', step: 'cutover', decision: 'approve' }), APPROVERS, ports());
    expect(out.statusCode).toBe(403);
    expect(JSON.parse(out.body).message).toMatch(/ferry-operators\/ci-run-1 is a role session whose name was chosen by whoever assumed the role/);
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
  });

  it('refuses a decision for a request other than the one named, and says what is pending when none is', async () => {
    const changed = await handleDecide(signed(approver('bob'), { migrationId: 'csmh', step: 'cutover', decision: 'approve', execution: `${EXEC}-old` }), APPROVERS, ports());
    expect(changed.statusCode).toBe(409);
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
    ssm.on(GetParameterCommand, { Name: '/ferry-production/csmh/approvals/cleanup', WithDecryption: true }).rejects(new ParameterNotFound({ message: 'gone', $metadata: {} }));
    const none = await handleDecide(signed(approver('bob'), { migrationId: 'csmh', step: 'cleanup', decision: 'approve' }), APPROVERS, ports());
    expect(none.statusCode).toBe(404);
    expect(JSON.parse(none.body).pending).toEqual([{ migrationId: 'csmh', step: 'cutover' }]);
    const bad = await handleDecide(signed(approver('bob'), { migrationId: '../x', step: 'cutover', decision: 'approve' }), APPROVERS, ports());
    expect(bad.statusCode).toBe(400);
  });
});

const EXEC_2 = `${MACHINE.replace('stateMachine', 'execution')}:csmh-2`;
const operator = (who: string) => session('AWSReservedSSO_FerryOperators_77aa', who);

/** A CloudTrail StartExecution event as LookupEvents returns it. */
function startEvent(who: string, executionArn: string, at: string) {
  return { EventName: 'StartExecution', EventTime: new Date(at), CloudTrailEvent: JSON.stringify({ eventTime: at, eventName: 'StartExecution', responseElements: { executionArn, startDate: at }, userIdentity: { arn: who } }) };
}

describe('the decision endpoint: separation of duties and its record', () => {
  const logged: { message: string; entry: Record<string, unknown> }[] = [];
  const ports = () => decisionPorts(logged);
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

describe('ferry approve --aws asks the endpoint with a SigV4-signed request', () => {
  let seen: { headers: Record<string, string | string[] | undefined>; body: string; path: string } | null = null;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen = { headers: req.headers, body, path: req.url ?? '' };
      res.writeHead(409, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'changed', message: 'the cutover request of csmh has changed' }));
    });
  });
  let url: URL;
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = new URL(`http://127.0.0.1:${(server.address() as { port: number }).port}/api/decide`);
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('signs for execute-api in the API\'s region, and the signature is the one AWS would compute', async () => {
    expect(regionOfApi(new URL('https://abc123.execute-api.eu-west-1.amazonaws.com/api/decide'))).toBe('eu-west-1');
    const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: 'session-1' };
    const answer = await askEndpoint(url, { migrationId: 'csmh', step: 'cutover', decision: 'approve' }, { region: 'eu-west-1', credentials });
    expect(answer).toMatchObject({ httpStatus: 409, status: 'changed' });
    expect(seen!.path).toBe('/api/decide');
    expect(JSON.parse(seen!.body)).toEqual({ migrationId: 'csmh', step: 'cutover', decision: 'approve' });
    const auth = String(seen!.headers.authorization);
    expect(auth).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=[^,]*host[^,]*, Signature=[0-9a-f]{64}$/);
    expect(seen!.headers['x-amz-security-token']).toBe('session-1');
    // recomputed on the server's side from what arrived, the signature matches
    const again = await new SignatureV4({ service: 'execute-api', region: 'eu-west-1', credentials, sha256: Hash.bind(null, 'sha256') }).sign(
      { method: 'POST', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: url.pathname, query: {}, headers: { host: url.host, 'content-type': 'application/json' }, body: seen!.body },
      { signingDate: new Date(`${String(seen!.headers['x-amz-date']).replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z')}`) },
    );
    expect(again.headers.authorization).toBe(auth);
  });
});
