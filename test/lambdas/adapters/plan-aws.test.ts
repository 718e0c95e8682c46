import { CloudWatchClient, GetMetricStatisticsCommand } from '@aws-sdk/client-cloudwatch';
import { mockClient } from 'aws-sdk-client-mock';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileMigrationClaims } from '../../../lambdas/adapters/claims.ts';
import { FileFlagStore } from '../../../lambdas/adapters/flags.ts';
import { Mysql2Connector } from '../../../lambdas/adapters/mysql2.ts';
import { planOnAws, rdsFreeStorage } from '../../../lambdas/adapters/plan-aws.ts';
import type { SqlConnection } from '../../../lambdas/core/ports/sql.ts';
import type { TaskDeps } from '../../../lambdas/core/ports/task-deps.ts';
import { tableCopyInputSchema } from '../../../lambdas/core/table-copy-input.ts';
import { planTableCopy } from '../../../lambdas/table-copy/plan.ts';
import { MYSQL_URL } from '../../helpers/db.ts';
import { scenario, TGT, type Scenario } from '../../helpers/scenario.ts';

const cloudwatch = mockClient(CloudWatchClient);
const conn = (serverKey: string) => ({ serverKey, name: 'edxapp' }) as SqlConnection;

describe('ferry plan on AWS', () => {
  let sc: Scenario | undefined;
  afterEach(async () => {
    await sc?.close();
    sc = undefined;
  });

  it('reads the free storage of an RDS instance from CloudWatch, and does not guess for a cluster, a proxy or another host', async () => {
    cloudwatch.reset();
    cloudwatch.on(GetMetricStatisticsCommand).resolves({ Datapoints: [{ Minimum: 52_000_000_000 }, { Minimum: 51_500_000_000 }] });
    const client = new CloudWatchClient({ region: 'eu-west-1' });
    expect(await rdsFreeStorage(client, conn('edxapp-db.c9akciq32.eu-west-1.rds.amazonaws.com:3306'))).toEqual({ bytes: '51500000000', where: expect.stringContaining('FreeStorageSpace of RDS instance edxapp-db') });
    expect(cloudwatch.commandCalls(GetMetricStatisticsCommand)[0]!.args[0].input).toMatchObject({ Namespace: 'AWS/RDS', MetricName: 'FreeStorageSpace', Dimensions: [{ Name: 'DBInstanceIdentifier', Value: 'edxapp-db' }] });
    for (const host of ['edxapp.cluster-c9akciq32.eu-west-1.rds.amazonaws.com', 'ferry.proxy-c9akciq32.eu-west-1.rds.amazonaws.com', 'db.internal.example.org']) {
      expect(await rdsFreeStorage(client, conn(`${host}:3306`)), host).toBeNull();
    }
    expect(cloudwatch.commandCalls(GetMetricStatisticsCommand)).toHaveLength(1);
  });

  it('answers with the plan, the knobs from the deployment put in, or with Preflight\'s refusal as an answer', async () => {
    sc = await scenario({ rows: 400 });
    const sql = new Mysql2Connector({ MYSQL_URL });
    const state = join(sc.dir, 'state');
    const deps = { sql, couch: { database: async () => Promise.reject(new Error('no CouchDB')) }, flags: new FileFlagStore(state), knobs: new FileFlagStore(state, 'knobs'), claims: new FileMigrationClaims(state), now: Date.now } as unknown as TaskDeps;
    await deps.knobs.set(sc.input().migrationId as string, { 'chunk.maxRows': '300' });
    const answer = await planOnAws(tableCopyInputSchema, planTableCopy, { migration: sc.input() }, deps, new CloudWatchClient({ region: 'eu-west-1' }));
    expect(answer).toMatchObject({ plan: { machine: 'table-copy', wouldRun: true, counts: { rows: '400' }, knobs: { inForce: { 'chunk.maxRows': '300' } } } });
    await sc.conn.query(`INSERT INTO \`${sc.tgt}\`.${TGT} (id, created, student_module_id) VALUES (1, NOW(6), 1)`);
    expect(await planOnAws(tableCopyInputSchema, planTableCopy, { migration: sc.input() }, deps)).toMatchObject({ refused: { field: 'target.table', message: expect.stringMatching(/already holds rows/) } });
    expect(await planOnAws(tableCopyInputSchema, planTableCopy, { migration: { ...sc.input(), chunk: { maxRows: 0 } } }, deps)).toMatchObject({ refused: { field: 'chunk.maxRows' } });
  });

  it('answers a throttle query whose error would print a row with the failure class only', async () => {
    sc = await scenario({ rows: 10 });
    await sc.conn.query(`CREATE TABLE \`${sc.src}\`.secrets (pw varchar(64))`);
    await sc.conn.query(`INSERT INTO \`${sc.src}\`.secrets VALUES ('hunter2-s3cret')`);
    const state = join(sc.dir, 'state');
    const deps = { sql: new Mysql2Connector({ MYSQL_URL }), couch: { database: async () => Promise.reject(new Error('no CouchDB')) }, flags: new FileFlagStore(state), knobs: new FileFlagStore(state, 'knobs'), claims: { ownerOf: async () => null }, now: Date.now } as unknown as TaskDeps;
    const query = `SELECT ExtractValue(1, CONCAT(0x3a, (SELECT pw FROM \`${sc.src}\`.secrets LIMIT 1)))`;
    const answer = await planOnAws(tableCopyInputSchema, planTableCopy, { migration: { ...sc.input(), throttle: { query } } }, deps);
    expect(answer).toMatchObject({ refused: { field: 'throttle.query', message: expect.stringMatching(/the throttle query failed on "edxapp": the database refused it while running it \(error 1105\)/) } });
    expect(JSON.stringify(answer)).not.toContain('hunter2');
  });
});
