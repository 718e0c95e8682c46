import { Annotations, Duration, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { fileURLToPath } from 'node:url';
import type { FerryConfig } from './config.ts';

/** What one task function touches, so its role holds exactly that. */
export interface WorkerSpec {
  /** The `${<name>FunctionArn}` placeholder of the ASL files. */
  readonly name: string;
  readonly machine: 'table-copy' | 'doctype-copy' | 'online-alter';
  /** Export of `lambdas/<machine>/lambda.ts`. */
  readonly handler: string;
  readonly store: 'mysql' | 'couch';
  /** none; read the FERRY_PAUSED flag; write flags; list a migration's flags. */
  readonly flags: 'none' | 'paused' | 'write' | 'list';
}

const t = (name: string, handler: string, flags: WorkerSpec['flags'] = 'none'): WorkerSpec => ({ name, machine: 'table-copy', handler, store: 'mysql', flags });
const d = (name: string, handler: string, flags: WorkerSpec['flags'] = 'none'): WorkerSpec => ({ name, machine: 'doctype-copy', handler, store: 'couch', flags });
const a = (name: string, handler: string, flags: WorkerSpec['flags'] = 'none'): WorkerSpec => ({ name, machine: 'online-alter', handler, store: 'mysql', flags });

export const WORKERS: readonly WorkerSpec[] = [
  t('Preflight', 'preflight'), t('RaiseAutoIncrement', 'raiseAutoIncrement'), t('SetCopyFlags', 'setCopyFlags', 'write'),
  t('CopyChunks', 'copyChunks', 'paused'), t('CatchUp', 'catchUp', 'paused'), t('Verify', 'verify', 'paused'),
  t('SetCutoverFlags', 'setCutoverFlags', 'write'), t('Sweep', 'sweep', 'paused'), t('Cleanup', 'cleanup', 'paused'), t('Summarize', 'summarize', 'list'),
  d('DocPreflight', 'preflight'), d('CopyDocs', 'copyDocs', 'paused'), d('TopOff', 'topOff', 'paused'), d('AssertComplete', 'assertComplete'),
  d('DocSetCutoverFlags', 'setCutoverFlags', 'write'), d('StopTopOff', 'stopTopOff'), d('DocCleanup', 'cleanup', 'paused'), d('DocSummarize', 'summarize', 'list'),
  a('AlterPreflight', 'preflight'), a('CreateShadow', 'createShadow'), a('AlterCopyChunks', 'copyChunks', 'paused'), a('AlterVerify', 'verify', 'paused'),
  a('SwapTables', 'swapTables'), a('AbandonAlter', 'abandonAlter'), a('AlterCleanup', 'cleanup', 'paused'), a('AlterSummarize', 'summarize'),
];

/** Records why a cdk-nag AwsSolutions finding is accepted on this construct and everything below it. */
export function acknowledge(scope: Construct, finding: string, reason: string): void {
  Validations.of(scope).acknowledge({ id: `AwsSolutions-${finding}`, reason });
}

export const lambdaEntry = (path: string) => fileURLToPath(new URL(`../lambdas/${path}`, import.meta.url));

export interface FerryFunctionProps {
  readonly entry: string;
  readonly handler: string;
  readonly description: string;
  readonly environment?: Record<string, string>;
  readonly vpc?: { vpc: ec2.IVpc; subnets: ec2.SubnetSelection; securityGroups: ec2.ISecurityGroup[] };
  readonly timeout?: Duration;
  readonly logRetentionDays: number;
}

/**
 * A task Lambda as ferry deploys them: Node 22 on arm64, bundled by esbuild, X-Ray on, a log group
 * of its own, and a role of its own that starts with nothing but writing to that log group.
 */
export class FerryFunction extends Construct {
  readonly fn: NodejsFunction;
  readonly role: iam.Role;
  constructor(scope: Construct, id: string, props: FerryFunctionProps) {
    super(scope, id);
    const logGroup = new logs.LogGroup(this, 'Logs', { retention: props.logRetentionDays as logs.RetentionDays });
    this.role = new iam.Role(this, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'), description: `ferry: ${props.description}` });
    // A log group's Arn attribute already ends in ":*", which covers its streams.
    this.role.addToPolicy(new iam.PolicyStatement({ actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logGroup.logGroupArn] }));
    if (props.vpc) {
      this.role.addManagedPolicy(iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaVPCAccessExecutionRole'));
      acknowledge(this, 'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
        "AWS's own policy for the network interfaces of a Lambda in a VPC; it is needed to reach MySQL hosts and CouchDB inside the VPC, and AWS keeps it current.");
    }
    acknowledge(this, 'IAM5[Resource::*]', 'X-Ray tracing (xray:PutTraceSegments, PutTelemetryRecords) has no resource-level permissions.');
    acknowledge(this, 'L1', 'Node.js 22 is the runtime ferry is built (esbuild target node22) and tested for; a newer runtime is an upgrade made on purpose, with its own test run.');
    this.fn = new NodejsFunction(this, 'Function', {
      entry: props.entry,
      handler: props.handler,
      description: props.description,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 1024,
      timeout: props.timeout ?? Duration.minutes(15),
      tracing: lambda.Tracing.ACTIVE,
      role: this.role,
      logGroup,
      environment: { NODE_OPTIONS: '--enable-source-maps', ...props.environment },
      bundling: { minify: true, sourceMap: true, target: 'node22', forceDockerBundling: false },
      ...(props.vpc ? { vpc: props.vpc.vpc, vpcSubnets: props.vpc.subnets, securityGroups: props.vpc.securityGroups } : {}),
    });
  }
}

export interface WorkersProps {
  readonly config: FerryConfig;
}

/** Every task function of the three machines, each granted only what its task touches. */
export class Workers extends Construct {
  /** By ASL placeholder name (`CopyChunks` for `${CopyChunksFunctionArn}`). */
  readonly functions: Record<string, FerryFunction> = {};

  constructor(scope: Construct, id: string, props: WorkersProps) {
    super(scope, id);
    const { config } = props;
    const stack = Stack.of(this);
    const param = (path: string) => `arn:${stack.partition}:ssm:${config.region}:${config.account}:parameter${path}`;
    let vpc: FerryFunctionProps['vpc'];
    if (config.vpc) {
      const imported = ec2.Vpc.fromVpcAttributes(this, 'Vpc', { vpcId: config.vpc.vpcId, availabilityZones: config.vpc.availabilityZones, privateSubnetIds: config.vpc.privateSubnetIds });
      Annotations.of(imported).acknowledgeWarning('@aws-cdk/aws-ec2:noSubnetRouteTableId', 'ferry never reads route tables: the subnets only place the functions\' network interfaces.');
      vpc = {
        vpc: imported,
        subnets: { subnets: imported.privateSubnets },
        securityGroups: config.vpc.securityGroupIds.map((sg, i) => ec2.SecurityGroup.fromSecurityGroupId(this, `Sg${i}`, sg, { mutable: false })),
      };
    }
    const mysql = Object.values(config.connections.mysql);
    const couch = Object.values(config.connections.couch);
    const environment = { FERRY_CONNECTIONS: JSON.stringify(config.connections) };

    for (const spec of WORKERS) {
      const f = new FerryFunction(this, spec.name, {
        entry: lambdaEntry(`${spec.machine}/lambda.ts`),
        handler: spec.handler,
        description: `${spec.machine} ${spec.name}`,
        environment,
        vpc,
        logRetentionDays: config.logRetentionDays,
      });
      this.functions[spec.name] = f;
      const secrets = (spec.store === 'mysql' ? mysql : couch).map((c) => c.secretArn);
      if (secrets.length) f.role.addToPolicy(new iam.PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: secrets }));
      const clusters = spec.store === 'mysql' ? mysql.flatMap((c) => (c.kind === 'data-api' ? [c.clusterArn] : [])) : [];
      if (clusters.length) f.role.addToPolicy(new iam.PolicyStatement({ actions: ['rds-data:ExecuteStatement', 'rds-data:BatchExecuteStatement', 'rds-data:BeginTransaction', 'rds-data:CommitTransaction', 'rds-data:RollbackTransaction'], resources: clusters }));
      const flagStatement = {
        none: null,
        paused: { actions: ['ssm:GetParameter'], resources: [param('/ferry/*/flags/FERRY_PAUSED')] },
        write: { actions: ['ssm:PutParameter', 'ssm:GetParameter'], resources: [param('/ferry/*/flags/*')] },
        list: { actions: ['ssm:GetParametersByPath'], resources: [param('/ferry/*/flags')] },
      }[spec.flags];
      if (spec.handler === 'preflight') {
        // Preflight asks Step Functions whether the execution that owns the migration still runs.
        const executions = `arn:${stack.partition}:states:${config.region}:${config.account}:execution:ferry-${spec.machine}:*`;
        f.role.addToPolicy(new iam.PolicyStatement({ actions: ['states:DescribeExecution'], resources: [executions] }));
        acknowledge(f, `IAM5[Resource::${executions.replace(stack.partition, '<AWS::Partition>')}]`, `Any execution of ferry-${spec.machine} may own the migration; their names are made at start time.`);
      }
      if (flagStatement) {
        f.role.addToPolicy(new iam.PolicyStatement(flagStatement));
        acknowledge(f, `IAM5[Resource::${flagStatement.resources[0]!.replace(stack.partition, '<AWS::Partition>')}]`,
          'Flags live at /ferry/<migrationId>/flags/; the migration id comes with each execution, so the grant covers ferry\'s flag namespace and nothing else in SSM.');
      }
    }
  }
}
