import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { planFunctionName, type Deployment } from '../lambdas/core/deployment.ts';
import { PAUSED_FLAG } from '../lambdas/core/ports/flags.ts';
import { Approvals } from './approvals.ts';
import type { FerryConfig } from './config.ts';
import { consoleExample } from './console-inputs.ts';
import { Observability } from './observability.ts';
import { MigrationStateMachine } from './state-machines.ts';
import { acknowledge, Workers } from './workers.ts';

export interface FerryStackProps extends StackProps {
  readonly config: FerryConfig;
  readonly deployment: Deployment;
}

/** `Ferry` for the single deployment, `Ferry-<env>` for one of several. */
export const stackId = (d: Deployment) => (d.name === 'ferry' ? 'Ferry' : `Ferry-${d.name.slice('ferry-'.length)}`);

/** The three migrations, deployable: task functions, state machines, approvals, flags' readers, dashboard and alarms. */
export class FerryStack extends Stack {
  readonly machines: MigrationStateMachine[];

  constructor(scope: Construct, id: string, props: FerryStackProps) {
    super(scope, id, { ...props, env: { account: props.config.account, region: props.config.region }, description: `ferry (${props.deployment.name}): online table and document migrations` });
    const { config, deployment } = props;
    const key = new kms.Key(this, 'Key', { enableKeyRotation: true, description: `${deployment.name}: approval tokens and notification topics` });
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': config.account } },
      }),
    );
    const workers = new Workers(this, 'Workers', { config, deployment });
    const approvals = new Approvals(this, 'Approvals', { config, key, deployment });
    const functions = { ...workers.functions, RequestApproval: approvals.requestApproval };
    this.machines = (['table-copy', 'doctype-copy', 'online-alter'] as const).map(
      (machine) => new MigrationStateMachine(this, machine.replace(/(^|-)(\w)/g, (_, __, c: string) => c.toUpperCase()), { machine, deployment, functions, logRetentionDays: config.logRetentionDays }),
    );
    approvals.gate(this.machines);
    const param = (path: string) => `arn:${this.partition}:ssm:${config.region}:${config.account}:parameter${deployment.ssmRoot}${path}`;
    const flags = param('/*/flags');
    const knobs = param('/*/knobs');
    config.flagReaderRoleArns.forEach((arn, i) => {
      const reader = iam.Role.fromRoleArn(this, `FlagReader${i}`, arn, { mutable: true });
      reader.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ssm:GetParameter', 'ssm:GetParameters', 'ssm:GetParametersByPath'], resources: [flags, `${flags}/*`] }));
    });
    if (config.operators.roleArn) {
      const operators = iam.Role.fromRoleArn(this, 'Operators', config.operators.roleArn, { mutable: true });
      const executions = this.machines.map((m) => m.arn.replace(':stateMachine:', ':execution:') + ':*');
      operators.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['states:StartExecution', 'states:ListExecutions', 'states:DescribeStateMachine'], resources: this.machines.map((m) => m.arn) }));
      // StopExecution: `ferry abandon --aws`; RedriveExecution: resuming a failed execution from the console.
      operators.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['states:DescribeExecution', 'states:GetExecutionHistory', 'states:StopExecution', 'states:RedriveExecution'], resources: executions }));
      // `ferry start/status --aws` find the machines by name; listing has no resource-level permission.
      operators.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['states:ListStateMachines'], resources: ['*'] }));
      operators.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ssm:GetParametersByPath', 'ssm:GetParameter'], resources: [param(''), flags, `${flags}/*`] }));
      // ferry status: the re-verification's report beside a pending cut-over, the old home's lag beside a pending cleanup.
      operators.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ssm:GetParameter'], resources: [param('/*/status/reverify'), param('/*/status/lag')] }));
      // Operators pause and resume (FERRY_PAUSED); the cut-over flags are set only by the approved Tasks.
      operators.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ssm:PutParameter'], resources: [param(`/*/flags/${PAUSED_FLAG}`)] }));
      // ferry plan --aws: the plan functions run the checks where the databases answer, writing nothing.
      operators.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: (['table-copy', 'doctype-copy', 'online-alter'] as const).map((m) => `arn:${this.partition}:lambda:${config.region}:${config.account}:function:${planFunctionName(deployment, m)}`) }));
      // Operators set and take back live knobs (ferry set --aws), and ferry status reads them.
      operators.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ssm:GetParametersByPath'], resources: [knobs] }));
      operators.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ssm:PutParameter', 'ssm:DeleteParameters'], resources: [`${knobs}/*`] }));
      const policy = operators.node.tryFindChild('Policy') ?? operators;
      acknowledge(policy, 'IAM5[Resource::*]', 'states:ListStateMachines has no resource-level permission; `ferry --aws` finds the machines by name with it.');
      for (const e of executions) acknowledge(policy, `IAM5[Resource::${e.replace(this.partition, '<AWS::Partition>')}]`, 'Operators follow any execution of the machine; execution names are made at start time.');
      for (const r of [flags, `${flags}/*`, param(`/*/flags/${PAUSED_FLAG}`)]) {
        acknowledge(policy, `IAM5[Resource::${r.replace(this.partition, '<AWS::Partition>')}]`, `Operators read the flags of any migration under ${deployment.ssmRoot}/<migrationId>/flags/ and may set only ${PAUSED_FLAG}.`);
      }
      for (const r of [param('/*/status/reverify'), param('/*/status/lag')]) {
        acknowledge(policy, `IAM5[Resource::${r.replace(this.partition, '<AWS::Partition>')}]`, "Operators read the re-verification report and the old home's lag of any migration (ferry status), read only.");
      }
      for (const r of [knobs, `${knobs}/*`]) {
        acknowledge(policy, `IAM5[Resource::${r.replace(this.partition, '<AWS::Partition>')}]`, `Operators tune any migration's live knobs under ${deployment.ssmRoot}/<migrationId>/knobs/ (chunk and throttle fields, each checked by the tasks), and nothing else in SSM.`);
      }
    }
    config.flagReaderRoleArns.forEach((_, i) => {
      const policy = this.node.findChild(`FlagReader${i}`).node.tryFindChild('Policy');
      for (const r of [flags, `${flags}/*`]) {
        if (policy) acknowledge(policy, `IAM5[Resource::${r.replace(this.partition, '<AWS::Partition>')}]`, `Applications read the flags of any migration under ${deployment.ssmRoot}/<migrationId>/flags/, and nothing else in SSM.`);
      }
    });
    new Observability(this, 'Observability', {
      config,
      deployment,
      key,
      machines: this.machines,
      taskLogGroups: Object.values(workers.functions).map((f) => f.fn.logGroup),
    });
    for (const m of this.machines) {
      new CfnOutput(this, `${m.node.id}ConsoleInput`, {
        description: `${m.name}: an example execution input for the Step Functions console (JSON schema: schemas/${m.machine}.schema.json in the repository)`,
        value: JSON.stringify(consoleExample(m.machine)),
      });
    }
  }
}
