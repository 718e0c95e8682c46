import { describe, expect, it } from 'vitest';
import { AwsSqlConnector, connectionsSchema, emfReporter, SecretCache } from '../../../lambdas/adapters/aws.ts';

describe('AWS ports', () => {
  it('writes progress as CloudWatch embedded metrics, with the throttle wait when throttled', () => {
    const lines: string[] = [];
    const report = emfReporter('table-copy', (l) => lines.push(l));
    report({ migrationId: 'm', phase: 'copy', done: '1200', total: '5000', throttle: null });
    report({ migrationId: 'm', phase: 'copy', done: '1200', total: '5000', throttle: 'Threads_running 40 > 25 on edxapp', waitSeconds: 10 });
    const [a, b] = lines.map((l) => JSON.parse(l));
    expect(a).toMatchObject({ Machine: 'table-copy', MigrationId: 'm', Done: 1200, phase: 'copy', _aws: { CloudWatchMetrics: [{ Namespace: 'Ferry', Dimensions: [['Machine', 'MigrationId']] }] } });
    expect(a.ThrottledSeconds).toBeUndefined();
    expect(b).toMatchObject({ ThrottledSeconds: 10, throttle: 'Threads_running 40 > 25 on edxapp' });
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
});
