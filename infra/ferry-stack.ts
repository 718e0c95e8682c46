import { Stack, type StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { Approvals } from './approvals.ts';
import type { FerryConfig } from './config.ts';
import { Observability } from './observability.ts';
import { MigrationStateMachine } from './state-machines.ts';
import { acknowledge, Workers } from './workers.ts';

export interface FerryStackProps extends StackProps {
  readonly config: FerryConfig;
}

/** The three migrations, deployable: task functions, state machines, approvals, flags' readers, dashboard and alarms. */
export class FerryStack extends Stack {
  readonly machines: MigrationStateMachine[];

  constructor(scope: Construct, id: string, props: FerryStackProps) {
    super(scope, id, { ...props, env: { account: props.config.account, region: props.config.region } });
    const { config } = props;
    const key = new kms.Key(this, 'Key', { enableKeyRotation: true, description: 'ferry: approval tokens and notification topics' });
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': config.account } },
      }),
    );
    const workers = new Workers(this, 'Workers', { config });
    const approvals = new Approvals(this, 'Approvals', { config, key });
    const functions = { ...workers.functions, RequestApproval: approvals.requestApproval };
    this.machines = (['table-copy', 'doctype-copy', 'online-alter'] as const).map(
      (machine) => new MigrationStateMachine(this, machine.replace(/(^|-)(\w)/g, (_, __, c: string) => c.toUpperCase()), { machine, functions, logRetentionDays: config.logRetentionDays }),
    );
    for (const m of this.machines) {
      approvals.approvers.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['states:SendTaskSuccess', 'states:SendTaskFailure'], resources: [m.arn] }));
    }
    const flags = `arn:${this.partition}:ssm:${config.region}:${config.account}:parameter/ferry/*/flags`;
    config.flagReaderRoleArns.forEach((arn, i) => {
      iam.Role.fromRoleArn(this, `FlagReader${i}`, arn, { mutable: true }).addToPrincipalPolicy(
        new iam.PolicyStatement({ actions: ['ssm:GetParameter', 'ssm:GetParameters', 'ssm:GetParametersByPath'], resources: [flags, `${flags}/*`] }),
      );
    });
    if (config.operators.roleArn) {
      const operators = iam.Role.fromRoleArn(this, 'Operators', config.operators.roleArn, { mutable: true });
      operators.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['states:StartExecution', 'states:ListExecutions'], resources: this.machines.map((m) => m.arn) }));
      operators.addToPrincipalPolicy(
        new iam.PolicyStatement({
          // StopExecution: `ferry abandon --aws` stops a migration's executions before taking its triggers back.
          actions: ['states:DescribeExecution', 'states:GetExecutionHistory', 'states:StopExecution'],
          resources: this.machines.map((m) => m.arn.replace(':stateMachine:', ':execution:') + ':*'),
        }),
      );
      operators.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ssm:GetParametersByPath', 'ssm:GetParameter', 'ssm:PutParameter'], resources: [flags, `${flags}/*`] }));
      for (const m of this.machines) {
        acknowledge(this, `IAM5[Resource::${m.arn.replace(':stateMachine:', ':execution:').replace(this.partition, '<AWS::Partition>')}:*]`, `Operators follow any execution of ${m.name}; execution names are made at start time.`);
      }
    }
    for (const finding of [flags, `${flags}/*`]) {
      acknowledge(this, `IAM5[Resource::${finding.replace(this.partition, '<AWS::Partition>')}]`, 'Applications and operators read the flags of any migration under /ferry/<migrationId>/flags/, and nothing else in SSM.');
    }
    new Observability(this, 'Observability', {
      config,
      key,
      machines: this.machines,
      taskLogGroups: Object.values(workers.functions).map((f) => f.fn.logGroup),
    });
  }
}
