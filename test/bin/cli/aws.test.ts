import { DescribeExecutionCommand, GetExecutionHistoryCommand, ListExecutionsCommand, ListStateMachinesCommand, SFNClient, StartExecutionCommand, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { GetParameterCommand, GetParametersByPathCommand, SSMClient } from '@aws-sdk/client-ssm';
import { AwsApprovals } from '../../../lambdas/adapters/approvals-aws.ts';
import { SsmFlagStore } from '../../../lambdas/adapters/flags-ssm.ts';
import { mockClient } from 'aws-sdk-client-mock';
import { readFileSync } from 'node:fs';
import { beforeEach, describe, expect, it } from 'vitest';
import { abandonExecution, executionName, executionStatus, planOnDeployment, startExecution } from '../../../bin/cli/aws.ts';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { personOf, startedBy } from '../../../lambdas/adapters/identity.ts';
import { deployment } from '../../../lambdas/core/deployment.ts';
import { CloudTrailClient, LookupEventsCommand } from '@aws-sdk/client-cloudtrail';

const sfn = mockClient(SFNClient);
const client = new SFNClient({ region: 'eu-west-1' });
const example = JSON.parse(readFileSync(new URL('../../../examples/csmh-extended.json', import.meta.url), 'utf8'));
const arn = 'arn:aws:states:eu-west-1:123456789012:stateMachine:ferry-table-copy';

describe('ferry start', () => {
  beforeEach(() => sfn.reset());

  it('finds ferry-<machine> and starts it with the input, named after the migration', async () => {
    sfn.on(ListStateMachinesCommand).resolvesOnce({ stateMachines: [{ name: 'other', stateMachineArn: 'x', type: 'STANDARD', creationDate: new Date() }], nextToken: 'n' }).resolvesOnce({
      stateMachines: [{ name: 'ferry-table-copy', stateMachineArn: arn, type: 'STANDARD', creationDate: new Date() }],
    });
    sfn.on(StartExecutionCommand).resolves({ executionArn: `${arn.replace('stateMachine', 'execution')}:x`, startDate: new Date() });
    const started = await startExecution(client, deployment(), 'table-copy', example);
    const input = sfn.commandCalls(StartExecutionCommand)[0]!.args[0].input;
    expect(input.stateMachineArn).toBe(arn);
    expect(input.name).toMatch(/^csmh-extended-\d{4}-\d\d-\d\dT/);
    expect(JSON.parse(input.input!)).toEqual(example);
    expect(started.name).toBe(input.name);
  });

  it('starts the machine of the environment asked for (ferry-<env>-<machine>)', async () => {
    const staging = arn.replace('ferry-table-copy', 'ferry-staging-table-copy');
    sfn.on(ListStateMachinesCommand).resolves({ stateMachines: [{ name: 'ferry-table-copy', stateMachineArn: arn, type: 'STANDARD', creationDate: new Date() }, { name: 'ferry-staging-table-copy', stateMachineArn: staging, type: 'STANDARD', creationDate: new Date() }] });
    sfn.on(StartExecutionCommand).resolves({ executionArn: `${staging}:x`, startDate: new Date() });
    await startExecution(client, deployment('staging'), 'table-copy', example);
    expect(sfn.commandCalls(StartExecutionCommand)[0]!.args[0].input.stateMachineArn).toBe(staging);
  });

  it('refuses bad input before calling AWS', async () => {
    await expect(startExecution(client, deployment(), 'table-copy', { ...example, idOffset: 5 })).rejects.toMatchObject({ name: 'InvalidInput', field: 'idOffset' });
    expect(sfn.calls()).toHaveLength(0);
  });

  it('keeps execution names within 80 characters', () => {
    expect(executionName('x'.repeat(80)).length).toBe(80);
    expect(executionName('m', new Date('2026-01-02T03:04:05.678Z'))).toBe('m-2026-01-02T03-04-05-678Z');
  });
});

describe('ferry status', () => {
  const ssm = mockClient(SSMClient);
  beforeEach(() => {
    sfn.reset();
    ssm.reset();
  });

  it('finds the newest execution of a migration and shows its phase, progress, throttle reason and pending approval', async () => {
    const execArn = `${arn.replace('stateMachine', 'execution')}:csmh-extended-2026-11-21T10-00-00-000Z`;
    sfn.on(ListStateMachinesCommand).resolves({ stateMachines: [{ name: 'ferry-table-copy', stateMachineArn: arn, type: 'STANDARD', creationDate: new Date() }] });
    sfn.on(ListExecutionsCommand).resolves({
      executions: [
        { executionArn: `${execArn}-old`, stateMachineArn: arn, name: 'csmh-extended-2026-11-20T10-00-00-000Z', status: 'FAILED', startDate: new Date('2026-11-20') },
        { executionArn: execArn, stateMachineArn: arn, name: 'csmh-extended-2026-11-21T10-00-00-000Z', status: 'RUNNING', startDate: new Date('2026-11-21') },
        { executionArn: 'x', stateMachineArn: arn, name: 'other-2026-11-22T10-00-00-000Z', status: 'RUNNING', startDate: new Date('2026-11-22') },
      ],
    });
    // another migration's execution, opened to read its input
    sfn.on(DescribeExecutionCommand).resolves({ executionArn: 'x', stateMachineArn: arn, status: 'RUNNING', startDate: new Date('2026-11-22'), input: JSON.stringify({ ...example, migrationId: 'other' }) });
    sfn.on(DescribeExecutionCommand, { executionArn: execArn }).resolves({ executionArn: execArn, stateMachineArn: arn, status: 'RUNNING', startDate: new Date('2026-11-21'), input: JSON.stringify(example) });
    const state = { phase: 'copy', done: false, waitSeconds: 10, throttle: 'Threads_running 40 > 25 on edxapp', iterations: 7, continueAsNew: false, progress: { rowsCopied: '1200000', estimatedRows: '2000000', copiedUpTo: '1250000', rowsDeleted: '0' } };
    sfn.on(GetExecutionHistoryCommand).resolves({
      events: [
        { id: 9, type: 'WaitStateEntered', timestamp: new Date() },
        { id: 8, type: 'LambdaFunctionSucceeded', timestamp: new Date(), lambdaFunctionSucceededEventDetails: { output: JSON.stringify(state) } },
      ],
    });
    ssm.on(GetParametersByPathCommand).resolves({ Parameters: [{ Name: '/ferry/csmh-extended/approvals/cutover', LastModifiedDate: new Date('2026-11-21T12:00:00Z') }, { Name: '/ferry/csmh-extended/flags/X' }] });
    // the operator's knobs: one the input takes, one it cannot (no page.docs in a table-copy)
    ssm.on(GetParametersByPathCommand, { Path: '/ferry/csmh-extended/knobs' }).resolves({
      Parameters: [{ Name: '/ferry/csmh-extended/knobs/chunk.targetMillis', Value: '250' }, { Name: '/ferry/csmh-extended/knobs/page.docs', Value: '10' }],
    });
    const ssmClient = new SSMClient({ region: 'eu-west-1' });
    ssm.on(GetParameterCommand, { Name: '/ferry/csmh-extended/status/reverify' }).resolves({ Parameter: { Value: JSON.stringify({ note: 'verified 4 minutes ago, 12 ranges, 0 differences', differences: [] }) } });
    const status = await executionStatus(client, new AwsApprovals(ssmClient, client), deployment(), 'csmh-extended', new SsmFlagStore(ssmClient, '/ferry', 'knobs'), ssmClient);
    expect(status.reverify).toEqual({ note: 'verified 4 minutes ago, 12 ranges, 0 differences', differences: [] });
    expect(status.knobs).toEqual({
      set: { 'chunk.targetMillis': '250', 'page.docs': '10' },
      inForce: { 'chunk.targetMillis': '250' },
      ignored: ["page.docs=10: this migration's input has no page.docs"],
    });
    expect(status).toMatchObject({
      executionArn: execArn,
      status: 'RUNNING',
      migrationId: 'csmh-extended',
      phase: 'copy',
      throttle: 'Threads_running 40 > 25 on edxapp',
      progress: { rowsCopied: '1200000' },
      pendingApprovals: [{ step: 'cutover', since: '2026-11-21T12:00:00.000Z', approve: 'npx ferry approve csmh-extended --step cutover --aws' }],
    });
    expect(status).not.toHaveProperty('oldHome');

    // later, waiting for the cleanup: the old home's lag as the scheduled function last reported it, and no re-verification
    ssm.on(GetParametersByPathCommand).resolves({ Parameters: [{ Name: '/ferry/csmh-extended/approvals/cleanup', LastModifiedDate: new Date('2026-11-22T12:00:00Z') }] });
    const lag = { at: '2026-11-22T12:05:00.000Z', note: 'old table: edxapp.csmh lacks the 12 rows the application inserted in csmh.csmhe since the copy flags (ids above 90000)' };
    ssm.on(GetParameterCommand, { Name: '/ferry/csmh-extended/status/lag' }).resolves({ Parameter: { Value: JSON.stringify(lag) } });
    const later = await executionStatus(client, new AwsApprovals(ssmClient, client), deployment(), 'csmh-extended', new SsmFlagStore(ssmClient, '/ferry', 'knobs'), ssmClient);
    expect(later.oldHome).toEqual(lag);
    expect(later).not.toHaveProperty('reverify');
  });
});

describe('ferry status, for executions not named after the migration', () => {
  const ssm = mockClient(SSMClient);
  beforeEach(() => {
    sfn.reset();
    ssm.reset();
  });

  it('finds one started from the console by its input, follows its hand-overs to the execution running now, and shows the approval it waits for', async () => {
    const exec = (name: string) => `${arn.replace('stateMachine', 'execution')}:${name}`;
    sfn.on(ListStateMachinesCommand).resolves({ stateMachines: [{ name: 'ferry-table-copy', stateMachineArn: arn, type: 'STANDARD', creationDate: new Date() }] });
    sfn.on(ListExecutionsCommand).resolves({
      executions: [
        { executionArn: exec('console-start'), stateMachineArn: arn, name: 'console-start', status: 'SUCCEEDED', startDate: new Date('2026-11-20') },
        { executionArn: exec('someone-else'), stateMachineArn: arn, name: 'someone-else', status: 'RUNNING', startDate: new Date('2026-11-21') },
      ],
    });
    const continuation = JSON.stringify({ migration: example, handedOverBy: exec('console-start') });
    sfn.on(DescribeExecutionCommand, { executionArn: exec('console-start') }).resolves({ executionArn: exec('console-start'), stateMachineArn: arn, status: 'SUCCEEDED', startDate: new Date('2026-11-20'), input: JSON.stringify(example), output: JSON.stringify({ continuedAs: exec('a1b2c3') }) });
    sfn.on(DescribeExecutionCommand, { executionArn: exec('someone-else') }).resolves({ executionArn: exec('someone-else'), stateMachineArn: arn, status: 'RUNNING', startDate: new Date('2026-11-21'), input: JSON.stringify({ ...example, migrationId: 'another' }) });
    sfn.on(DescribeExecutionCommand, { executionArn: exec('a1b2c3') }).resolves({ executionArn: exec('a1b2c3'), stateMachineArn: arn, status: 'RUNNING', startDate: new Date('2026-11-21'), input: continuation });
    sfn.on(GetExecutionHistoryCommand).resolves({ events: [] });
    ssm.on(GetParametersByPathCommand).resolves({ Parameters: [{ Name: '/ferry/csmh-extended/approvals/cutover', LastModifiedDate: new Date('2026-11-21T12:00:00Z') }] });
    const status = await executionStatus(client, new AwsApprovals(new SSMClient({ region: 'eu-west-1' }), client), deployment(), 'csmh-extended');
    expect(status).toMatchObject({ executionArn: exec('a1b2c3'), status: 'RUNNING', migrationId: 'csmh-extended', pendingApprovals: [{ step: 'cutover' }] });
  });
});

describe('who started an execution (separation of duties)', () => {
  const trail = mockClient(CloudTrailClient);
  beforeEach(() => {
    sfn.reset();
    trail.reset();
  });

  it('follows hand-overs back to the execution a person started, and reads CloudTrail for who did', async () => {
    const exec = (name: string) => `${arn.replace('stateMachine', 'execution')}:${name}`;
    sfn.on(DescribeExecutionCommand, { executionArn: exec('next') }).resolves({ executionArn: exec('next'), stateMachineArn: arn, status: 'RUNNING', startDate: new Date(), input: JSON.stringify({ migration: example, handedOverBy: exec('first') }) });
    sfn.on(DescribeExecutionCommand, { executionArn: exec('first') }).resolves({ executionArn: exec('first'), stateMachineArn: arn, status: 'SUCCEEDED', startDate: new Date('2026-11-20T10:00:00Z'), input: JSON.stringify(example) });
    trail.on(LookupEventsCommand).resolves({
      Events: [
        { CloudTrailEvent: JSON.stringify({ responseElements: { executionArn: exec('other') }, userIdentity: { arn: 'arn:aws:sts::123456789012:assumed-role/ferry-operators/bob' } }) },
        { CloudTrailEvent: JSON.stringify({ responseElements: { executionArn: exec('first') }, userIdentity: { arn: 'arn:aws:sts::123456789012:assumed-role/ferry-operators/alice' } }) },
      ],
    });
    const starter = await startedBy(client, new CloudTrailClient({ region: 'eu-west-1' }), exec('next'), async (from, to) => from === exec('first') && to === exec('next'));
    expect(starter).toEqual(['arn:aws:sts::123456789012:assumed-role/ferry-operators/alice']);
  });

  it('does not follow a hand-over the execution named does not show in its own history: whoever started the continuation started it', async () => {
    const exec = (name: string) => `${arn.replace('stateMachine', 'execution')}:${name}`;
    // alice starts an execution whose input says bob's execution handed over to it
    sfn.on(DescribeExecutionCommand, { executionArn: exec('forged') }).resolves({ executionArn: exec('forged'), stateMachineArn: arn, status: 'RUNNING', startDate: new Date('2026-11-21T10:00:00Z'), input: JSON.stringify({ migration: example, handedOverBy: exec('bobs') }) });
    sfn.on(DescribeExecutionCommand, { executionArn: exec('bobs') }).resolves({ executionArn: exec('bobs'), stateMachineArn: arn, status: 'SUCCEEDED', startDate: new Date('2026-11-20T10:00:00Z'), input: JSON.stringify(example) });
    trail.on(LookupEventsCommand).resolves({
      Events: [
        { CloudTrailEvent: JSON.stringify({ responseElements: { executionArn: exec('bobs') }, userIdentity: { arn: 'arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Operators_aa11/bob' } }) },
        { CloudTrailEvent: JSON.stringify({ responseElements: { executionArn: exec('forged') }, userIdentity: { arn: 'arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Operators_aa11/alice' } }) },
      ],
    });
    const asked: string[] = [];
    const starter = await startedBy(client, new CloudTrailClient({ region: 'eu-west-1' }), exec('forged'), async (from, to) => (asked.push(`${from} → ${to}`), false));
    expect(asked).toEqual([`${exec('bobs')} → ${exec('forged')}`]);
    expect(starter).toEqual(['arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Operators_aa11/alice']);
  });

  it('tells people apart only by names AWS sets: IAM users and Identity Center sessions, not a session name the caller chose', () => {
    const sso = (role: string, who: string) => `arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_${role}_0123abcd/${who}`;
    // alice as operator and as approver is one person
    expect(personOf(sso('Operators', 'alice'))).toBe(personOf(sso('Approvers', 'alice')));
    expect(personOf(sso('Operators', 'alice'))).not.toBe(personOf(sso('Approvers', 'bob')));
    expect(personOf('arn:aws:iam::123456789012:user/ops/carol')).toBe('iam-user:123456789012:carol');
    // a role anyone assumes is named as they choose: "alice-2" may be alice
    expect(personOf('arn:aws:sts::123456789012:assumed-role/ferry-approvers/alice-2')).toBeNull();
    expect(personOf('arn:aws:sts::123456789012:federated-user/alice')).toBeNull();
  });
});

describe('ferry abandon --aws', () => {
  beforeEach(() => sfn.reset());
  const alterArn = 'arn:aws:states:eu-west-1:123456789012:stateMachine:ferry-online-alter';
  const alter = JSON.parse(readFileSync(new URL('../../../examples/csm-bigint.json', import.meta.url), 'utf8'));

  it('stops the running executions of the migration, then starts the abandon path with the input they ran', async () => {
    sfn.on(ListStateMachinesCommand).resolves({ stateMachines: [{ name: 'ferry-online-alter', stateMachineArn: alterArn, type: 'STANDARD', creationDate: new Date() }] });
    sfn.on(ListExecutionsCommand).resolves({
      executions: [
        { name: 'csm-bigint-2026-01-02', executionArn: `${alterArn}:old`, status: 'FAILED', startDate: new Date(1000), stateMachineArn: alterArn },
        { name: 'csm-bigint-2026-01-03', executionArn: `${alterArn}:running`, status: 'RUNNING', startDate: new Date(2000), stateMachineArn: alterArn },
        { name: 'other-2026-01-03', executionArn: `${alterArn}:other`, status: 'RUNNING', startDate: new Date(3000), stateMachineArn: alterArn },
      ],
    });
    sfn.on(DescribeExecutionCommand).resolves({ input: JSON.stringify({ migration: alter, handedOverBy: 'x' }), executionArn: `${alterArn}:running`, stateMachineArn: alterArn, status: 'RUNNING', startDate: new Date() });
    sfn.on(DescribeExecutionCommand, { executionArn: `${alterArn}:other` }).resolves({ input: JSON.stringify({ ...alter, migrationId: 'other' }), executionArn: `${alterArn}:other`, stateMachineArn: alterArn, status: 'RUNNING', startDate: new Date() });
    sfn.on(StopExecutionCommand).resolves({ stopDate: new Date() });
    sfn.on(StartExecutionCommand).resolves({ executionArn: `${alterArn}:abandon`, startDate: new Date() });
    const out = await abandonExecution(client, deployment(), 'csm-bigint');
    expect(out.stopped).toEqual([`${alterArn}:running`]);
    expect(sfn.commandCalls(StopExecutionCommand)[0]!.args[0].input).toMatchObject({ executionArn: `${alterArn}:running`, error: 'Abandoned' });
    const started = sfn.commandCalls(StartExecutionCommand)[0]!.args[0].input;
    expect(JSON.parse(started.input!)).toEqual({ migration: alter, abandon: true });
    expect(started.name).toMatch(/^csm-bigint-abandon-/);
  });

  it('abandons a table-copy found on its own machine when the online-alter machine never ran the migration', async () => {
    const copyArn = 'arn:aws:states:eu-west-1:123456789012:stateMachine:ferry-table-copy';
    const copy = { migrationId: 'csmh', source: { connection: 'edxapp', database: 'edxapp', table: 'h' }, target: { connection: 'csmh', database: 'csmh', table: 'h' } };
    sfn.on(ListStateMachinesCommand).resolves({
      stateMachines: [
        { name: 'ferry-online-alter', stateMachineArn: alterArn, type: 'STANDARD', creationDate: new Date() },
        { name: 'ferry-table-copy', stateMachineArn: copyArn, type: 'STANDARD', creationDate: new Date() },
      ],
    });
    sfn.on(ListExecutionsCommand).resolves({ executions: [] });
    sfn.on(ListExecutionsCommand, { stateMachineArn: copyArn }).resolves({
      executions: [{ name: 'csmh-2026-01-03', executionArn: `${copyArn}:waiting`, status: 'RUNNING', startDate: new Date(2000), stateMachineArn: copyArn }],
    });
    sfn.on(DescribeExecutionCommand).resolves({ input: JSON.stringify(copy), executionArn: `${copyArn}:waiting`, stateMachineArn: copyArn, status: 'RUNNING', startDate: new Date() });
    sfn.on(StopExecutionCommand).resolves({ stopDate: new Date() });
    sfn.on(StartExecutionCommand).resolves({ executionArn: `${copyArn}:abandon`, startDate: new Date() });
    const out = await abandonExecution(client, deployment(), 'csmh');
    expect(out.stopped).toEqual([`${copyArn}:waiting`]);
    const started = sfn.commandCalls(StartExecutionCommand)[0]!.args[0].input;
    expect(started.stateMachineArn).toBe(copyArn);
    expect(JSON.parse(started.input!)).toEqual({ migration: copy, abandon: true });
  });

  it('refuses an input for another migration', async () => {
    sfn.on(ListStateMachinesCommand).resolves({ stateMachines: [{ name: 'ferry-online-alter', stateMachineArn: alterArn, type: 'STANDARD', creationDate: new Date() }] });
    sfn.on(ListExecutionsCommand).resolves({ executions: [] });
    await expect(abandonExecution(client, deployment(), 'other', alter)).rejects.toThrow(/the input is for migration csm-bigint, not other/);
    expect(sfn.commandCalls(StopExecutionCommand)).toHaveLength(0);
  });
});

describe('ferry plan --aws', () => {
  const lambda = mockClient(LambdaClient);
  const client = new LambdaClient({ region: 'eu-west-1' });
  beforeEach(() => lambda.reset());
  const payload = (v: unknown) => new TextEncoder().encode(JSON.stringify(v)) as never;

  it('invokes the deployment\'s plan function of the machine with the input, and hands back its answer', async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: payload({ refused: { field: 'target.table', message: 'target.table: already holds rows' } }) });
    expect(await planOnDeployment(client, deployment('staging'), 'table-copy', example)).toEqual({ refused: { field: 'target.table', message: 'target.table: already holds rows' } });
    const call = lambda.commandCalls(InvokeCommand)[0]!.args[0].input;
    expect(call.FunctionName).toBe('ferry-staging-table-copy-plan');
    expect(JSON.parse(new TextDecoder().decode(call.Payload as Uint8Array))).toEqual({ migration: example });
  });

  it('refuses bad input before calling AWS, and says which function failed and how', async () => {
    await expect(planOnDeployment(client, deployment(), 'table-copy', { ...example, chunk: { maxRows: 0 } })).rejects.toMatchObject({ name: 'InvalidInput', field: 'chunk.maxRows' });
    expect(lambda.calls()).toHaveLength(0);
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, FunctionError: 'Unhandled', Payload: payload({ errorType: 'TransientError', errorMessage: 'edxapp: connect ETIMEDOUT' }) });
    await expect(planOnDeployment(client, deployment(), 'table-copy', example)).rejects.toThrow('ferry-table-copy-plan failed: TransientError: edxapp: connect ETIMEDOUT');
  });
});
