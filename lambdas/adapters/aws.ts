import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DescribeExecutionCommand, ExecutionDoesNotExist, SFNClient } from '@aws-sdk/client-sfn';
import { SSMClient } from '@aws-sdk/client-ssm';
import { z } from 'zod';
import { InvalidInput } from '../core/errors.ts';
import { NanoConnector } from './couch.ts';
import { DataApiConnection } from './data-api.ts';
import type { Progress, TaskDeps } from '../core/ports/task-deps.ts';
import { SsmFlagStore } from './flags-ssm.ts';
import { Mysql2Connector } from './mysql2.ts';
import type { SqlConnection, SqlConnector } from '../core/ports/sql.ts';

/**
 * The stack's connection map, handed to every function in `FERRY_CONNECTIONS`: names to places and
 * to the secrets that hold their credentials. No credential is ever in it, nor in an execution's input.
 */
export const connectionsSchema = z.strictObject({
  mysql: z
    .record(
      z.string(),
      z.discriminatedUnion('kind', [
        z.strictObject({ kind: z.literal('data-api'), clusterArn: z.string(), secretArn: z.string() }),
        z.strictObject({ kind: z.literal('host'), host: z.string(), port: z.number().int().default(3306), secretArn: z.string() }),
      ]),
    )
    .default({}),
  couch: z.record(z.string(), z.strictObject({ url: z.string().url(), secretArn: z.string() })).default({}),
});
export type Connections = z.output<typeof connectionsSchema>;

export function connectionsFromEnv(env: NodeJS.ProcessEnv = process.env): Connections {
  return connectionsSchema.parse(JSON.parse(env.FERRY_CONNECTIONS ?? '{}'));
}

/** Secrets Manager values, kept for a few minutes in a warm function. */
export class SecretCache {
  private readonly cache = new Map<string, { at: number; value: { username: string; password: string } }>();
  constructor(private readonly client: SecretsManagerClient = new SecretsManagerClient({}), private readonly ttlMillis = 300_000) {}

  async credentials(secretArn: string): Promise<{ username: string; password: string }> {
    const hit = this.cache.get(secretArn);
    if (hit && Date.now() - hit.at < this.ttlMillis) return hit.value;
    const out = await this.client.send(new GetSecretValueCommand({ SecretId: secretArn }));
    const parsed = JSON.parse(out.SecretString ?? '{}') as { username?: string; password?: string };
    if (!parsed.username || parsed.password === undefined) throw new InvalidInput('connection', `secret ${secretArn} has no username and password`);
    const value = { username: parsed.username, password: parsed.password };
    this.cache.set(secretArn, { at: Date.now(), value });
    return value;
  }
}

function unknown(kind: string, name: string, known: string[]): InvalidInput {
  return new InvalidInput('connection', `${kind} connection "${name}" is not in this stack's configuration (known: ${known.join(', ') || 'none'}); add it to the ferry context in cdk.json and deploy`);
}

/** MySQL connections on AWS: the Data API for Aurora clusters, mysql2 for hosts in the VPC. */
export class AwsSqlConnector implements SqlConnector {
  private readonly dataApi = new Map<string, DataApiConnection>();
  private readonly driver: Mysql2Connector;
  constructor(private readonly config: Connections, secrets: SecretCache) {
    this.driver = new Mysql2Connector(async (name) => {
      const c = this.config.mysql[name];
      if (!c || c.kind !== 'host') throw unknown('MySQL', name, Object.keys(this.config.mysql));
      const { username, password } = await secrets.credentials(c.secretArn);
      return { options: { host: c.host, port: c.port, user: username, password, ssl: { rejectUnauthorized: true } }, where: `${c.host}:${c.port}`, from: 'the stack configuration' };
    });
  }

  private pick(name: string): 'data-api' | 'host' {
    const c = this.config.mysql[name];
    if (!c) throw unknown('MySQL', name, Object.keys(this.config.mysql));
    return c.kind;
  }

  async connect(name: string): Promise<SqlConnection> {
    if (this.pick(name) === 'host') return this.driver.connect(name);
    let conn = this.dataApi.get(name);
    if (!conn) {
      const c = this.config.mysql[name] as { clusterArn: string; secretArn: string };
      conn = new DataApiConnection(name, c);
      this.dataApi.set(name, conn);
    }
    return conn;
  }

  async connectDedicated(name: string): Promise<SqlConnection> {
    if (this.pick(name) === 'host') return this.driver.connectDedicated(name);
    return this.connect(name);
  }

  async closeAll(): Promise<void> {
    await this.driver.closeAll();
  }
}

export function awsCouchConnector(config: Connections, secrets: SecretCache): NanoConnector {
  return new NanoConnector(async (name) => {
    const c = config.couch[name];
    if (!c) throw unknown('CouchDB', name, Object.keys(config.couch));
    const { username, password } = await secrets.credentials(c.secretArn);
    const url = new URL(c.url);
    url.username = encodeURIComponent(username);
    url.password = encodeURIComponent(password);
    return { url: url.toString(), from: 'the stack configuration' };
  });
}

/**
 * Progress as CloudWatch embedded-metric log lines: `Done` (rows or docs so far, a gauge) and
 * `ThrottledSeconds` (the wait a throttle imposed), by machine and migration, with the phase and the note as searchable fields.
 */
export function emfReporter(machine: string, write: (line: string) => void = (l) => process.stdout.write(l + '\n')): (p: Progress) => void {
  return (p) => {
    const metrics = [{ Name: 'Done', Unit: 'Count' }];
    const line: Record<string, unknown> = { Machine: machine, MigrationId: p.migrationId, Done: Number(p.done), phase: p.phase, note: p.note, throttle: p.throttle };
    if (p.throttle) {
      metrics.push({ Name: 'ThrottledSeconds', Unit: 'Seconds' });
      line.ThrottledSeconds = p.waitSeconds ?? 0;
    }
    line._aws = { Timestamp: Date.now(), CloudWatchMetrics: [{ Namespace: 'Ferry', Dimensions: [['Machine', 'MigrationId']], Metrics: metrics }] };
    write(JSON.stringify(line));
  };
}

/** Seconds a Lambda keeps in hand: the chunk under way finishes, the checkpoint is written, the answer returns. */
const SAFETY_MILLIS = 60_000;
const MAX_BUDGET_MILLIS = 300_000;

/** Step Functions knows whether the execution that owns a migration still runs. */
export class SfnExecutionRegistry {
  constructor(private readonly sfn: SFNClient = new SFNClient({})) {}
  async isRunning(executionId: string): Promise<boolean> {
    try {
      const out = await this.sfn.send(new DescribeExecutionCommand({ executionArn: executionId }));
      return out.status === 'RUNNING';
    } catch (err) {
      if (err instanceof ExecutionDoesNotExist) return false;
      throw err;
    }
  }
}

let shared: { sql: AwsSqlConnector; couch: NanoConnector; flags: SsmFlagStore; executions: SfnExecutionRegistry } | undefined;

/** The ports on AWS, built once per warm function; the time budget from the invocation's remaining time. */
export function awsDeps(machine: string, context?: { getRemainingTimeInMillis(): number }, env: NodeJS.ProcessEnv = process.env): TaskDeps {
  if (!shared) {
    const config = connectionsFromEnv(env);
    const secrets = new SecretCache();
    shared = {
      sql: new AwsSqlConnector(config, secrets),
      couch: awsCouchConnector(config, secrets),
      flags: new SsmFlagStore(new SSMClient({})),
      executions: new SfnExecutionRegistry(),
    };
  }
  const remaining = context?.getRemainingTimeInMillis() ?? MAX_BUDGET_MILLIS + SAFETY_MILLIS;
  return {
    ...shared,
    budgetMillis: Math.max(1000, Math.min(MAX_BUDGET_MILLIS, remaining - SAFETY_MILLIS)),
    now: Date.now,
    report: emfReporter(machine),
  };
}

/** A task handler as a Lambda handler: the same function, given the AWS ports. */
export function onLambda<E, R>(machine: string, fn: (event: E, deps: TaskDeps) => Promise<R>) {
  return (event: E, context?: { getRemainingTimeInMillis(): number }): Promise<R> => fn(event, awsDeps(machine, context));
}
