import { DescribeExecutionCommand, ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import type { TaskDeps } from '../../../lambdas/core/ports/task-deps.ts';
import { reverifyPending } from '../../../lambdas/table-copy/reverify-pending.ts';
import type { TaskEvent } from '../../../lambdas/table-copy/open-migration.ts';

describe('the scheduled re-verification on AWS', () => {
  const sfn = mockClient(SFNClient);
  const machineArn = 'arn:aws:states:eu-west-1:123456789012:stateMachine:ferry-production-table-copy';
  const exec = (name: string) => `arn:aws:states:eu-west-1:123456789012:execution:ferry-production-table-copy:${name}`;

  it('re-verifies, for the execution that waits, each migration whose cut-over approval is pending, and nothing else', async () => {
    sfn.reset();
    sfn.on(ListExecutionsCommand, { stateMachineArn: machineArn, statusFilter: 'RUNNING', nextToken: undefined }).resolves({
      executions: [{ executionArn: exec('a'), stateMachineArn: machineArn, name: 'a', status: 'RUNNING', startDate: new Date() }],
      nextToken: 'n',
    });
    sfn.on(ListExecutionsCommand, { stateMachineArn: machineArn, statusFilter: 'RUNNING', nextToken: 'n' }).resolves({
      executions: [
        { executionArn: exec('b'), stateMachineArn: machineArn, name: 'b', status: 'RUNNING', startDate: new Date() },
        { executionArn: exec('c'), stateMachineArn: machineArn, name: 'c', status: 'RUNNING', startDate: new Date() },
      ],
    });
    // a: copying (no approval pending); b: a continuation waiting for the cut-over; c: waiting for the cleanup
    sfn.on(DescribeExecutionCommand, { executionArn: exec('a') }).resolves({ executionArn: exec('a'), stateMachineArn: machineArn, status: 'RUNNING', startDate: new Date(), input: JSON.stringify({ migrationId: 'copying' }) });
    sfn.on(DescribeExecutionCommand, { executionArn: exec('b') }).resolves({ executionArn: exec('b'), stateMachineArn: machineArn, status: 'RUNNING', startDate: new Date(), input: JSON.stringify({ migration: { migrationId: 'csmh' }, handedOverBy: exec('x') }) });
    sfn.on(DescribeExecutionCommand, { executionArn: exec('c') }).resolves({ executionArn: exec('c'), stateMachineArn: machineArn, status: 'RUNNING', startDate: new Date(), input: JSON.stringify({ migrationId: 'other' }) });
    const approvals = { pending: async () => [{ migrationId: 'csmh', step: 'cutover' }, { migrationId: 'other', step: 'cleanup' }] };
    const calls: TaskEvent[] = [];
    const out = await reverifyPending({} as TaskDeps, { approvals, sfn: new SFNClient({ region: 'eu-west-1' }), machineArn }, async (event) => {
      calls.push(event);
      return { note: 'verified 0 minutes ago, 3 ranges, 0 differences' };
    });
    expect(calls).toEqual([{ migration: { migrationId: 'csmh' }, execution: exec('b') }]);
    expect(out).toEqual([{ migrationId: 'csmh', execution: exec('b'), note: 'verified 0 minutes ago, 3 ranges, 0 differences', differences: [] }]);
  });

  it('asks Step Functions nothing when no cut-over approval is pending', async () => {
    sfn.reset();
    const out = await reverifyPending({} as TaskDeps, { approvals: { pending: async () => [{ migrationId: 'm', step: 'cleanup' }] }, sfn: new SFNClient({ region: 'eu-west-1' }), machineArn }, async () => ({ note: '' }));
    expect(out).toEqual([]);
    expect(sfn.calls()).toHaveLength(0);
  });
});
