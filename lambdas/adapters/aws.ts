import { AWS_BUDGET_SECONDS } from '../core/plan.ts';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { RDSDataClient } from '@aws-sdk/client-rds-data';
import { DescribeExecutionCommand, ExecutionDoesNotExist, GetExecutionHistoryCommand, SFNClient } from '@aws-sdk/client-sfn';
import { SSMClient } from '@aws-sdk/client-ssm';
import { z } from 'zod';
import { InvalidInput } from '../core/errors.ts';
import { NanoConnector } from './couch.ts';
import { DataApiConnection } from './data-api.ts';
import type { TaskDeps } from '../core/ports/task-deps.ts';
import { deploymentFromEnv } from '../core/deployment.ts';
import { progressReporter, telemetry } from './telemetry.ts';
import { SsmFlagStore } from './flags-ssm.ts';
import { SsmMigrationClaims } from './claims-ssm.ts';
import { SsmStatusReports } from './status-ssm.ts';
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
  couch: z
    .record(
      z.string(),
      z.strictObject({
        url: z.string().url(),
        secretArn: z.string(),
        /** Reached from inside the VPC (a private address): the CouchDB tasks then run in the configured subnets too. */
        inVpc: z.boolean().default(false),
      }),
    )
    .default({}),
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
  constructor(
    private readonly config: Connections,
    secrets: SecretCache,
    private readonly rdsData: RDSDataClient = new RDSDataClient({}),
  ) {
    this.driver = new Mysql2Connector(async (name) => {
      const c = this.config.mysql[name];
      if (!c || c.kind !== 'host') throw unknown('MySQL', name, Object.keys(this.config.mysql));
      const { username, password } = await secrets.credentials(c.secretArn);
      // TLS verified against Amazon's RDS certificate authorities, which the stack points Node at (NODE_EXTRA_CA_CERTS).
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
      conn = new DataApiConnection(name, c, this.rdsData);
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

/** Seconds a Lambda keeps in hand: the chunk under way finishes, the checkpoint is written, the answer returns. */
const SAFETY_MILLIS = 60_000;
const MAX_BUDGET_MILLIS = AWS_BUDGET_SECONDS * 1000;

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

  /** Reads `from`'s latest events: its continue-as-new Task must have started `to`. */
  async handedOver(from: string, to: string): Promise<boolean> {
    try {
      const out = await this.sfn.send(new GetExecutionHistoryCommand({ executionArn: from, reverseOrder: true, maxResults: 40 }));
      return (out.events ?? []).some((e) => {
        if (e.type !== 'TaskSucceeded' || e.taskSucceededEventDetails?.resourceType !== 'states' || !e.taskSucceededEventDetails.resource?.startsWith('startExecution')) return false;
        try {
          return (JSON.parse(e.taskSucceededEventDetails.output ?? '{}') as { ExecutionArn?: string }).ExecutionArn === to;
        } catch {
          return false;
        }
      });
    } catch (err) {
      if (err instanceof ExecutionDoesNotExist) return false;
      throw err;
    }
  }
}

let shared: { sql: AwsSqlConnector; couch: NanoConnector; flags: SsmFlagStore; knobs: SsmFlagStore; claims: SsmMigrationClaims; status: SsmStatusReports; executions: SfnExecutionRegistry; telemetry: ReturnType<typeof telemetry> } | undefined;

/** The ports on AWS, built once per warm function; the time budget from the invocation's remaining time. */
export function awsDeps(machine: string, context?: { getRemainingTimeInMillis(): number }, env: NodeJS.ProcessEnv = process.env): TaskDeps {
  if (!shared) {
    const config = connectionsFromEnv(env);
    const t = telemetry(env);
    const secrets = new SecretCache(t.tracer.captureAWSv3Client(new SecretsManagerClient({})));
    const ssm = t.tracer.captureAWSv3Client(new SSMClient({}));
    shared = {
      sql: new AwsSqlConnector(config, secrets, t.tracer.captureAWSv3Client(new RDSDataClient({}))),
      couch: awsCouchConnector(config, secrets),
      flags: new SsmFlagStore(ssm, deploymentFromEnv(env).ssmRoot),
      knobs: new SsmFlagStore(ssm, deploymentFromEnv(env).ssmRoot, 'knobs'),
      claims: new SsmMigrationClaims(ssm, deploymentFromEnv(env).ssmRoot),
      status: new SsmStatusReports(ssm, deploymentFromEnv(env).ssmRoot),
      executions: new SfnExecutionRegistry(t.tracer.captureAWSv3Client(new SFNClient({}))),
      telemetry: t,
    };
  }
  const remaining = context?.getRemainingTimeInMillis() ?? MAX_BUDGET_MILLIS + SAFETY_MILLIS;
  return {
    ...shared,
    budgetMillis: Math.max(1000, Math.min(MAX_BUDGET_MILLIS, remaining - SAFETY_MILLIS)),
    now: Date.now,
    report: progressReporter(machine, shared.telemetry),
  };
}

/** A task handler as a Lambda handler: the same function, given the AWS ports. */
export function onLambda<E, R>(machine: string, fn: (event: E, deps: TaskDeps) => Promise<R>) {
  return (event: E, context?: { getRemainingTimeInMillis(): number }): Promise<R> => fn(event, awsDeps(machine, context));
}
