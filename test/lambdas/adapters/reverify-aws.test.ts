import { DescribeExecutionCommand, ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import type { TaskDeps } from '../../../lambdas/core/ports/task-deps.ts';
import { lagReportText, reverifyPending } from '../../../lambdas/adapters/reverify-aws.ts';
import type { TaskEvent } from '../../../lambdas/table-copy/open-migration.ts';

describe('the scheduled re-verification on AWS', () => {
  let clock = 0;
  const deps = { now: () => clock, budgetMillis: 300_000 } as TaskDeps;
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
    const out = await reverifyPending(deps, { approvals, sfn: new SFNClient({ region: 'eu-west-1' }), machineArn }, async (event) => {
      calls.push(event);
      return { note: 'verified 0 minutes ago, 3 ranges, 0 differences' };
    });
    expect(calls).toEqual([{ migration: { migrationId: 'csmh' }, execution: exec('b') }]);
    expect(out).toEqual([{ migrationId: 'csmh', execution: exec('b'), note: 'verified 0 minutes ago, 3 ranges, 0 differences', differences: [] }]);
  });

  it('asks Step Functions nothing when no cut-over approval is pending', async () => {
    sfn.reset();
    const out = await reverifyPending(deps, { approvals: { pending: async () => [{ migrationId: 'm', step: 'cleanup' }] }, sfn: new SFNClient({ region: 'eu-west-1' }), machineArn }, async () => ({ note: '' }));
    expect(out).toEqual([]);
    expect(sfn.calls()).toHaveLength(0);
  });

  it('shares one budget among the migrations, and one that fails does not stop the others; each report is written when done', async () => {
    sfn.reset();
    clock = 0;
    const execs = ['p', 'q', 'r'].map((n) => ({ executionArn: exec(n), stateMachineArn: machineArn, name: n, status: 'RUNNING' as const, startDate: new Date() }));
    sfn.on(ListExecutionsCommand).resolves({ executions: execs });
    for (const n of ['p', 'q', 'r']) sfn.on(DescribeExecutionCommand, { executionArn: exec(n) }).resolves({ executionArn: exec(n), stateMachineArn: machineArn, status: 'RUNNING', startDate: new Date(), input: JSON.stringify({ migrationId: n }) });
    const approvals = { pending: async () => ['p', 'q', 'r'].map((migrationId) => ({ migrationId, step: 'cutover' })) };
    const budgets: number[] = [];
    const written: string[] = [];
    const out = await reverifyPending(deps, { approvals, sfn: new SFNClient({ region: 'eu-west-1' }), machineArn }, async (event, d) => {
      budgets.push(d.budgetMillis);
      const id = (event.migration as { migrationId: string }).migrationId;
      clock += 200_000;
      if (id === 'p') throw Object.assign(new Error('edxapp: connect ETIMEDOUT'), { name: 'TransientError' });
      return { note: `${id} checked` };
    }, async (r) => void written.push(`${r.migrationId}: ${r.note}`));
    // p took 200 s of the 300 and failed; q had the 100 s left; r had none left and waits for the next run
    expect(budgets).toEqual([300_000, 100_000]);
    expect(written).toEqual(['p: re-verification failed: TransientError: edxapp: connect ETIMEDOUT', 'q: q checked']);
    expect(out.map((r) => r.migrationId)).toEqual(['p', 'q']);
  });
  it("beside each pending cleanup approval (not the cut-over's), runs the lag step for the execution that waits", async () => {
    sfn.reset();
    sfn.on(ListExecutionsCommand).resolves({ executions: ['c', 'd'].map((n) => ({ executionArn: exec(n), stateMachineArn: machineArn, name: n, status: 'RUNNING' as const, startDate: new Date() })) });
    sfn.on(DescribeExecutionCommand, { executionArn: exec('c') }).resolves({ executionArn: exec('c'), stateMachineArn: machineArn, status: 'RUNNING', startDate: new Date(), input: JSON.stringify({ migrationId: 'waits-cleanup' }) });
    sfn.on(DescribeExecutionCommand, { executionArn: exec('d') }).resolves({ executionArn: exec('d'), stateMachineArn: machineArn, status: 'RUNNING', startDate: new Date(), input: JSON.stringify({ migrationId: 'waits-cutover' }) });
    const approvals = { pending: async () => [{ migrationId: 'waits-cleanup', step: 'cleanup' }, { migrationId: 'waits-cutover', step: 'cutover' }] };
    const written: string[] = [];
    const out = await reverifyPending(deps, { approvals, sfn: new SFNClient({ region: 'eu-west-1' }), machineArn }, async (event) => {
      if ((event.migration as { migrationId: string }).migrationId === 'waits-cleanup') throw Object.assign(new Error('csmh: connect ETIMEDOUT'), { name: 'TransientError' });
      return { note: 'never' };
    }, async (r) => void written.push(`${r.migrationId}: ${r.note}`), 'cleanup');
    expect(out.map((r) => r.execution)).toEqual([exec('c')]);
    expect(written).toEqual(["waits-cleanup: reading the old home's lag failed: TransientError: csmh: connect ETIMEDOUT"]);
    expect(JSON.parse(lagReportText('2026-12-01T10:00:00.000Z', 'x'.repeat(5000)))).toEqual({ at: '2026-12-01T10:00:00.000Z', note: 'x'.repeat(2000) });
  });
});
