import { Annotations, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { fileURLToPath } from 'node:url';
import { capVariables } from '../lambdas/core/caps.ts';
import { deploymentVariables, planFunctionName, stateMachineName, type Deployment } from '../lambdas/core/deployment.ts';
import { PAUSED_FLAG } from '../lambdas/core/ports/flags.ts';
import type { FerryConfig } from './config.ts';

/** What one task function touches, so its role holds exactly that. */
export interface WorkerSpec {
  /** The `${<name>FunctionArn}` placeholder of the ASL files. */
  readonly name: string;
  readonly machine: 'table-copy' | 'doctype-copy' | 'online-alter';
  /** Export of `lambdas/<machine>/lambda.ts`. */
  readonly handler: string;
  readonly store: 'mysql' | 'couch';
  /** none; read the FERRY_PAUSED flag; write flags; write and remove flags (a revert sets them back); list a migration's flags. */
  readonly flags: 'none' | 'paused' | 'write' | 'restore' | 'list';
  /** Not a Task: run on this schedule, beside the executions of its machine that wait for an approval. */
  readonly every?: Duration;
  /** Reads the operator's live knobs (ferry set) between its pieces of work; every function that reads FERRY_PAUSED does. */
  readonly knobs?: boolean;
  /** Writes the old home's lag beside a pending cleanup approval (`<root>/<migrationId>/status/lag`), for the page and `ferry status --aws`. */
  readonly reportsLag?: boolean;
  /** Not a Task: invoked by the CLI (`ferry plan --aws`), which finds it by its name, `<deployment>-<machine>-plan`. */
  readonly plan?: boolean;
}


const t = (name: string, handler: string, flags: WorkerSpec['flags'] = 'none'): WorkerSpec => ({ name, machine: 'table-copy', handler, store: 'mysql', flags });
const d = (name: string, handler: string, flags: WorkerSpec['flags'] = 'none'): WorkerSpec => ({ name, machine: 'doctype-copy', handler, store: 'couch', flags });
const a = (name: string, handler: string, flags: WorkerSpec['flags'] = 'none'): WorkerSpec => ({ name, machine: 'online-alter', handler, store: 'mysql', flags });

export const WORKERS: readonly WorkerSpec[] = [
  t('Preflight', 'preflight'), t('RaiseAutoIncrement', 'raiseAutoIncrement'), t('SetCopyFlags', 'setCopyFlags', 'write'),
  t('CopyChunks', 'copyChunks', 'paused'), t('PlanPartitions', 'planPartitions'), t('CopyPartition', 'copyPartition', 'paused'), t('FinishPartitions', 'finishPartitions'),
  t('CatchUp', 'catchUp', 'paused'), t('Verify', 'verify', 'paused'),
  { ...t('Reverify', 'reverify', 'paused'), every: Duration.minutes(5) },
  t('SetCutoverFlags', 'setCutoverFlags', 'write'), t('Sweep', 'sweep', 'paused'), t('Cleanup', 'cleanup', 'paused'), { ...t('Revert', 'revert', 'restore'), knobs: true }, t('Summarize', 'summarize', 'list'), t('AbandonCopy', 'abandonCopy'),
  d('DocPreflight', 'preflight'), d('CopyDocs', 'copyDocs', 'paused'), { ...d('TopOff', 'topOff', 'paused'), reportsLag: true }, d('AssertComplete', 'assertComplete'),
  d('DocSetCutoverFlags', 'setCutoverFlags', 'write'), d('StopTopOff', 'stopTopOff'), d('DocCleanup', 'cleanup', 'paused'), d('DocRevert', 'revert', 'restore'), d('DocSummarize', 'summarize', 'list'),
  { ...t('Plan', 'plan', 'paused'), plan: true }, { ...d('DocPlan', 'plan', 'paused'), plan: true }, { ...a('AlterPlan', 'plan', 'paused'), plan: true },
  a('AlterPreflight', 'preflight'), a('CreateShadow', 'createShadow'), a('AlterCopyChunks', 'copyChunks', 'paused'), a('AlterVerify', 'verify', 'paused'),
  { ...a('AlterReverify', 'reverify', 'paused'), every: Duration.minutes(5) },
  a('SwapTables', 'swapTables'), a('AbandonAlter', 'abandonAlter'), a('AlterCleanup', 'cleanup', 'paused'), a('AlterRevert', 'revert', 'paused'), a('AlterSummarize', 'summarize'),
];

/**
 * Records why a cdk-nag AwsSolutions finding is accepted, on the construct it is about (a policy,
 * a function), never on a whole stack or group of resources, so a new grant elsewhere is judged anew.
 */
export function acknowledge(scope: Construct, finding: string, reason: string): void {
  Validations.of(scope).acknowledge({ id: `AwsSolutions-${finding}`, reason });
}

/** Acknowledges a finding on a role's default policy (the one `addToPolicy` fills), which must exist by now. */
export function acknowledgeOnPolicy(role: iam.IRole, finding: string, reason: string): void {
  acknowledge(role.node.findChild('DefaultPolicy'), finding, reason);
}

export const lambdaEntry = (path: string) => fileURLToPath(new URL(`../lambdas/${path}`, import.meta.url));

/** The Lambda timeout of the task functions: above the 300 s budget a task works to, below the Task's TimeoutSeconds (900). */
export const TASK_FUNCTION_TIMEOUT = Duration.seconds(840);

export interface FerryFunctionProps {
  readonly entry: string;
  readonly handler: string;
  readonly description: string;
  readonly environment?: Record<string, string>;
  readonly vpc?: { vpc: ec2.IVpc; subnets: ec2.SubnetSelection; securityGroups: ec2.ISecurityGroup[] };
  readonly timeout?: Duration;
  readonly logRetentionDays: number;
  /** A name of its own, for a function something outside the stack invokes by name. */
  readonly functionName?: string;
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
    // Removed only when the create that made it rolls back: a failed first deploy strands nothing.
    const logGroup = new logs.LogGroup(this, 'Logs', { retention: props.logRetentionDays as logs.RetentionDays, removalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE });
    this.role = new iam.Role(this, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'), description: `ferry: ${props.description}` });
    // A log group's Arn attribute already ends in ":*", which covers its streams.
    this.role.addToPolicy(new iam.PolicyStatement({ actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logGroup.logGroupArn] }));
    // X-Ray and, in a VPC, the network interfaces: actions without resource-level permissions, each in a policy of its own.
    const tracing = new iam.Policy(this, 'Tracing', { statements: [new iam.PolicyStatement({ actions: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'], resources: ['*'] })], roles: [this.role] });
    acknowledge(tracing, 'IAM5[Resource::*]', 'X-Ray tracing (xray:PutTraceSegments, PutTelemetryRecords) has no resource-level permissions.');
    if (props.vpc) {
      const network = new iam.Policy(this, 'Network', {
        statements: [
          new iam.PolicyStatement({
            actions: ['ec2:CreateNetworkInterface', 'ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets', 'ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
            resources: ['*'],
          }),
        ],
        roles: [this.role],
      });
      acknowledge(network, 'IAM5[Resource::*]', "A Lambda's network interfaces in a VPC are created and described by these actions, which have no resource-level permissions (what AWSLambdaVPCAccessExecutionRole grants, without its logs:*).");
    }
    acknowledge(this, 'L1', 'Node.js 22 is the runtime ferry is built (esbuild target node22) and tested for; a newer runtime is an upgrade made on purpose, with its own test run.');
    this.fn = new NodejsFunction(this, 'Function', {
      entry: props.entry,
      handler: props.handler,
      description: props.description,
      ...(props.functionName ? { functionName: props.functionName } : {}),
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 1024,
      timeout: props.timeout ?? TASK_FUNCTION_TIMEOUT,
      role: this.role,
      logGroup,
      // Amazon's RDS certificate authorities: Node on Lambda trusts them only when told to, and MySQL sessions verify TLS.
      environment: { NODE_OPTIONS: '--enable-source-maps', NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem', ...props.environment },
      bundling: { minify: true, sourceMap: true, target: 'node22', forceDockerBundling: false },
      ...(props.vpc ? { vpc: props.vpc.vpc, vpcSubnets: props.vpc.subnets, securityGroups: props.vpc.securityGroups } : {}),
    });
    // Active tracing, set on the resource: the role's grants are the Tracing policy above.
    (this.fn.node.defaultChild as lambda.CfnFunction).tracingConfig = { mode: 'Active' };
  }
}

export interface WorkersProps {
  readonly config: FerryConfig;
  readonly deployment: Deployment;
}

/** The AWS APIs the functions in the subnets call, as interface endpoints. */
const ENDPOINTS = {
  secretsmanager: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
  ssm: ec2.InterfaceVpcEndpointAwsService.SSM,
  states: ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS,
  'rds-data': ec2.InterfaceVpcEndpointAwsService.RDS_DATA,
} as const;

/** Every task function of the three machines, each granted only what its task touches. */
export class Workers extends Construct {
  /** By ASL placeholder name (`CopyChunks` for `${CopyChunksFunctionArn}`). */
  readonly functions: Record<string, FerryFunction> = {};
  /** Interface endpoints made for the functions in the subnets, by service. */
  readonly endpoints: Record<string, ec2.InterfaceVpcEndpoint> = {};

  constructor(scope: Construct, id: string, props: WorkersProps) {
    super(scope, id);
    const { config, deployment } = props;
    const stack = Stack.of(this);
    const param = (path: string) => `arn:${stack.partition}:ssm:${config.region}:${config.account}:parameter${deployment.ssmRoot}${path}`;
    const mysql = Object.values(config.connections.mysql);
    const couch = Object.values(config.connections.couch);
    // Only the functions that open sessions inside the VPC run in it: MySQL hosts, CouchDB reached privately.
    const needsVpc = { mysql: mysql.some((c) => c.kind === 'host'), couch: couch.some((c) => c.inVpc) };
    let vpc: FerryFunctionProps['vpc'];
    if (config.vpc && (needsVpc.mysql || needsVpc.couch)) {
      const imported = ec2.Vpc.fromVpcAttributes(this, 'Vpc', { vpcId: config.vpc.vpcId, availabilityZones: config.vpc.availabilityZones, privateSubnetIds: config.vpc.privateSubnetIds });
      Annotations.of(imported).acknowledgeWarning('@aws-cdk/aws-ec2:noSubnetRouteTableId', 'ferry never reads route tables: the subnets only place the functions\' network interfaces.');
      const securityGroups = config.vpc.securityGroupIds.map((sg, i) => ec2.SecurityGroup.fromSecurityGroupId(this, `Sg${i}`, sg, { mutable: false }));
      vpc = { vpc: imported, subnets: { subnets: imported.privateSubnets }, securityGroups };
      if (config.vpc.awsApis === 'endpoints') {
        const sg = new ec2.SecurityGroup(this, 'EndpointsSg', { vpc: imported, description: `${deployment.name}: HTTPS from the task functions to the AWS API endpoints`, allowAllOutbound: false });
        for (const from of securityGroups) sg.addIngressRule(ec2.Peer.securityGroupId(from.securityGroupId), ec2.Port.tcp(443), 'HTTPS from ferry task functions');
        const wanted: (keyof typeof ENDPOINTS)[] = ['secretsmanager', 'ssm', 'states', ...(mysql.some((c) => c.kind === 'data-api') && needsVpc.mysql ? (['rds-data'] as const) : [])];
        for (const service of wanted) {
          this.endpoints[service] = new ec2.InterfaceVpcEndpoint(this, `Endpoint-${service}`, { vpc: imported, service: ENDPOINTS[service], subnets: vpc.subnets, securityGroups: [sg], privateDnsEnabled: true, open: false });
        }
      }
    }
    const environment = { FERRY_CONNECTIONS: JSON.stringify(config.connections), ...deploymentVariables(deployment), ...capVariables(config.caps) };

    for (const spec of WORKERS) {
      const machineArn = `arn:${stack.partition}:states:${config.region}:${config.account}:stateMachine:${stateMachineName(deployment, spec.machine)}`;
      const f = new FerryFunction(this, spec.name, {
        entry: lambdaEntry(`${spec.machine}/lambda.ts`),
        handler: spec.handler,
        description: `${spec.machine} ${spec.name}`,
        ...(spec.plan ? { functionName: planFunctionName(deployment, spec.machine) } : {}),
        // Built from the name, not taken from the resource: the machine depends on these functions.
        environment: spec.every ? { ...environment, FERRY_MACHINE_ARN: machineArn } : environment,
        vpc: needsVpc[spec.store] ? vpc : undefined,
        logRetentionDays: config.logRetentionDays,
      });
      this.functions[spec.name] = f;
      const secrets = (spec.store === 'mysql' ? mysql : couch).map((c) => c.secretArn);
      if (secrets.length) f.role.addToPolicy(new iam.PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: secrets }));
      const clusters = spec.store === 'mysql' ? mysql.flatMap((c) => (c.kind === 'data-api' ? [c.clusterArn] : [])) : [];
      if (clusters.length) f.role.addToPolicy(new iam.PolicyStatement({ actions: ['rds-data:ExecuteStatement', 'rds-data:BeginTransaction', 'rds-data:CommitTransaction', 'rds-data:RollbackTransaction'], resources: clusters }));
      const flagStatement = {
        none: null,
        paused: { actions: ['ssm:GetParameter'], resources: [param(`/*/flags/${PAUSED_FLAG}`)] },
        write: { actions: ['ssm:PutParameter', 'ssm:GetParameter'], resources: [param('/*/flags/*')] },
        restore: { actions: ['ssm:PutParameter', 'ssm:GetParameter', 'ssm:DeleteParameters'], resources: [param('/*/flags/*')] },
        list: { actions: ['ssm:GetParametersByPath'], resources: [param('/*/flags')] },
      }[spec.flags];
      if (spec.handler === 'preflight') {
        // Preflight asks Step Functions whether the execution that owns the migration still runs, and who started it.
        const executions = `arn:${stack.partition}:states:${config.region}:${config.account}:execution:${stateMachineName(deployment, spec.machine)}:*`;
        f.role.addToPolicy(new iam.PolicyStatement({ actions: ['states:DescribeExecution', 'states:GetExecutionHistory'], resources: [executions] }));
        acknowledgeOnPolicy(f.role, `IAM5[Resource::${executions.replace(stack.partition, '<AWS::Partition>')}]`, `Any execution of ${stateMachineName(deployment, spec.machine)} may own the migration; their names are made at start time.`);
      }
      if (spec.handler === 'preflight' || spec.plan) {
        // The input a migration id belongs to: Preflight claims it (created, never overwritten), the plan only reads it.
        const owner = param('/*/owner');
        f.role.addToPolicy(new iam.PolicyStatement({ actions: spec.plan ? ['ssm:GetParameter'] : ['ssm:PutParameter', 'ssm:GetParameter'], resources: [owner] }));
        acknowledgeOnPolicy(f.role, `IAM5[Resource::${owner.replace(stack.partition, '<AWS::Partition>')}]`,
          `Each migration id's owner is kept at ${deployment.ssmRoot}/<migrationId>/owner; the migration id comes with each execution, so the grant covers those parameters and nothing else in SSM.`);
      }
      if (spec.plan) {
        // Free storage of an RDS instance, for the plan's disk line: CloudWatch reads have no resource-level permission.
        const metrics = new iam.Policy(this, `${spec.name}Metrics`, { statements: [new iam.PolicyStatement({ actions: ['cloudwatch:GetMetricStatistics'], resources: ['*'] })], roles: [f.role] });
        acknowledge(metrics, 'IAM5[Resource::*]', 'cloudwatch:GetMetricStatistics has no resource-level permission; the plan reads FreeStorageSpace of the RDS instance a connection reaches.');
      }
      if (spec.every) {
        // The pending approvals by their parameters' names and dates (nothing decrypted), and the executions that wait.
        f.role.addToPolicy(new iam.PolicyStatement({ actions: ['ssm:GetParametersByPath'], resources: [param('')] }));
        // What it found, for the approval page: String parameters per migration (the re-verification; the old home's lag).
        const status = [param('/*/status/reverify'), param('/*/status/lag')];
        f.role.addToPolicy(new iam.PolicyStatement({ actions: ['ssm:PutParameter'], resources: status }));
        for (const s of status) {
          acknowledgeOnPolicy(f.role, `IAM5[Resource::${s.replace(stack.partition, '<AWS::Partition>')}]`, 'The scheduled function reports for any migration of this deployment at <root>/<migrationId>/status/reverify (beside a cut-over approval) and status/lag (beside a cleanup approval), and nowhere else.');
        }
        f.role.addToPolicy(new iam.PolicyStatement({ actions: ['states:ListExecutions'], resources: [machineArn] }));
        const executions = machineArn.replace(':stateMachine:', ':execution:') + ':*';
        f.role.addToPolicy(new iam.PolicyStatement({ actions: ['states:DescribeExecution'], resources: [executions] }));
        acknowledgeOnPolicy(f.role, `IAM5[Resource::${executions.replace(stack.partition, '<AWS::Partition>')}]`, `Any execution of ${stateMachineName(deployment, spec.machine)} may be the one waiting for an approval; their names are made at start time.`);
        // One at a time: a slow pass is never overlapped by the next scheduled one.
        (f.fn.node.defaultChild as lambda.CfnFunction).reservedConcurrentExecutions = 1;
        new events.Rule(this, `${spec.name}Schedule`, { schedule: events.Schedule.rate(spec.every), targets: [new targets.LambdaFunction(f.fn)] });
      }
      if (flagStatement) {
        f.role.addToPolicy(new iam.PolicyStatement(flagStatement));
        acknowledgeOnPolicy(f.role, `IAM5[Resource::${flagStatement.resources[0]!.replace(stack.partition, '<AWS::Partition>')}]`,
          `Flags live at ${deployment.ssmRoot}/<migrationId>/flags/; the migration id comes with each execution, so the grant covers this deployment's flag namespace and nothing else in SSM.`);
      }
      if (spec.reportsLag) {
        const lag = param('/*/status/lag');
        f.role.addToPolicy(new iam.PolicyStatement({ actions: ['ssm:PutParameter'], resources: [lag] }));
        acknowledgeOnPolicy(f.role, `IAM5[Resource::${lag.replace(stack.partition, '<AWS::Partition>')}]`, "The top-off reports the old database's lag of any migration of this deployment at <root>/<migrationId>/status/lag while its cleanup approval waits, and nowhere else.");
      }
      if (spec.flags === 'paused' || spec.knobs) {
        // The loops that check FERRY_PAUSED before each chunk also read the operator's live knobs there (ferry set).
        const knobs = param('/*/knobs');
        f.role.addToPolicy(new iam.PolicyStatement({ actions: ['ssm:GetParametersByPath'], resources: [knobs] }));
        acknowledgeOnPolicy(f.role, `IAM5[Resource::${knobs.replace(stack.partition, '<AWS::Partition>')}]`,
          `Live knobs live at ${deployment.ssmRoot}/<migrationId>/knobs/; the migration id comes with each execution, so the grant covers this deployment's knob namespace, read only.`);
      }
    }
  }
}
