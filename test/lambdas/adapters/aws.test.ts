import { describe, expect, it, vi } from 'vitest';
import { AwsSqlConnector, connectionsSchema, SecretCache } from '../../../lambdas/adapters/aws.ts';
import { METRIC_NAMESPACE, progressReporter, TASK_DIMENSION_SETS, telemetry } from '../../../lambdas/adapters/telemetry.ts';

describe('AWS ports', () => {
  it('writes progress as a structured log line and embedded metrics with both dimension sets, the throttle wait when throttled', () => {
    const lines: string[] = [];
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (lines.push(String(chunk)), true));
    try {
      const report = progressReporter('table-copy', telemetry({ FERRY_ENV: 'staging' }));
      report({ migrationId: 'm', phase: 'copy', done: '1200', total: '5000', unit: 'rows', note: 'copied ids 1..1200', throttle: null });
      report({ migrationId: 'm', phase: 'copy', done: '1200', total: '5000', unit: 'rows', note: 'throttled', throttle: 'Threads_running 40 > 25 on edxapp', waitSeconds: 10 });
    } finally {
      write.mockRestore();
    }
    const records = lines.flatMap((l) => l.split('\n')).filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const logs = records.filter((r) => !r._aws);
    const metrics = records.filter((r) => r._aws);
    expect(logs[0]).toMatchObject({ level: 'INFO', message: 'copied ids 1..1200', service: 'ferry-staging', migrationId: 'm', machine: 'table-copy', phase: 'copy' });
    const done = metrics.filter((r) => 'Done' in r);
    expect(done).toHaveLength(2);
    expect(done[0]).toMatchObject({ service: 'ferry-staging', Machine: 'table-copy', MigrationId: 'm', Done: 1200, _aws: { CloudWatchMetrics: [{ Namespace: METRIC_NAMESPACE }] } });
    const sets = (done[0]!._aws as { CloudWatchMetrics: { Dimensions: string[][] }[] }).CloudWatchMetrics[0]!.Dimensions.map((d) => [...d].sort());
    expect(sets.sort()).toEqual(TASK_DIMENSION_SETS.map((d) => [...d].sort()).sort());
    expect(metrics.filter((r) => 'ThrottledSeconds' in r).map((r) => r.ThrottledSeconds)).toEqual([10]);
  });

  it('refuses a connection name the stack does not configure, saying where to add it', async () => {
    const connector = new AwsSqlConnector(connectionsSchema.parse({ mysql: { edxapp: { kind: 'data-api', clusterArn: 'c', secretArn: 's' } } }), new SecretCache());
    await expect(connector.connect('csmh')).rejects.toMatchObject({ name: 'InvalidInput', message: expect.stringContaining('known: edxapp') });
    const conn = await connector.connect('edxapp');
    expect(conn.sessions).toBe(false);
    expect(conn.serverKey).toBe('c');
  });
});

describe('SfnExecutionRegistry', () => {
  it('says running only for a RUNNING execution', async () => {
    const { DescribeExecutionCommand, ExecutionDoesNotExist, SFNClient } = await import('@aws-sdk/client-sfn');
    const { mockClient } = await import('aws-sdk-client-mock');
    const { SfnExecutionRegistry } = await import('../../../lambdas/adapters/aws.ts');
    const sfn = mockClient(SFNClient);
    sfn.on(DescribeExecutionCommand, { executionArn: 'a' }).resolves({ status: 'RUNNING' } as never)
      .on(DescribeExecutionCommand, { executionArn: 'b' }).resolves({ status: 'FAILED' } as never)
      .on(DescribeExecutionCommand, { executionArn: 'c' }).rejects(new ExecutionDoesNotExist({ message: 'gone', $metadata: {} }));
    const registry = new SfnExecutionRegistry(new SFNClient({ region: 'eu-west-1' }));
    expect([await registry.isRunning('a'), await registry.isRunning('b'), await registry.isRunning('c')]).toEqual([true, false, false]);
    sfn.restore();
  });

  it('accepts a hand-over only when the predecessor\'s history shows its continue-as-new starting this execution', async () => {
    const { GetExecutionHistoryCommand, SFNClient } = await import('@aws-sdk/client-sfn');
    const { mockClient } = await import('aws-sdk-client-mock');
    const { SfnExecutionRegistry } = await import('../../../lambdas/adapters/aws.ts');
    const sfn = mockClient(SFNClient);
    sfn.on(GetExecutionHistoryCommand, { executionArn: 'arn:e1' }).resolves({
      events: [
        { id: 30, type: 'ExecutionSucceeded', timestamp: new Date() },
        { id: 29, type: 'TaskSucceeded', timestamp: new Date(), taskSucceededEventDetails: { resourceType: 'states', resource: 'startExecution', output: JSON.stringify({ ExecutionArn: 'arn:e2', StartDate: 1 }) } },
        { id: 20, type: 'TaskSucceeded', timestamp: new Date(), taskSucceededEventDetails: { resourceType: 'lambda', resource: 'invoke', output: JSON.stringify({ ExecutionArn: 'arn:e3' }) } },
      ],
    });
    const registry = new SfnExecutionRegistry(new SFNClient({ region: 'eu-west-1' }));
    expect(await registry.handedOver('arn:e1', 'arn:e2')).toBe(true);
    // an execution whose input merely names e1
    expect(await registry.handedOver('arn:e1', 'arn:e3')).toBe(false);
    sfn.restore();
  });
});
