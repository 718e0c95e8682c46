import { Duration, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { deploymentVariables, type Deployment } from '../lambdas/core/deployment.ts';
import type { FerryConfig } from './config.ts';
import { ApprovalPage } from './approval-page.ts';
import type { MigrationStateMachine } from './state-machines.ts';
import { acknowledge, acknowledgeOnPolicy, FerryFunction, lambdaEntry } from './workers.ts';

export interface ApprovalsProps {
  readonly config: FerryConfig;
  /** Encrypts the callback tokens and the topic. */
  readonly key: kms.IKey;
  readonly deployment: Deployment;
}

/**
 * Approvals on AWS: the function every approval Task invokes with its callback token, which it
 * keeps as a SecureString only the approvers' role can decrypt and announces on an SNS topic with
 * the exact command to run; a scheduled watch that measures how long approvals have waited; and a
 * function that forgets the tokens of an execution that ended without them.
 */
export class Approvals extends Construct {
  readonly topic: sns.Topic;
  readonly requestApproval: FerryFunction;
  readonly watch: FerryFunction;
  readonly forget: FerryFunction;
  readonly approvers: iam.IRole;
  /** The approval page, linked from every notice. */
  readonly page: ApprovalPage;
  private readonly config: FerryConfig;

  constructor(scope: Construct, id: string, props: ApprovalsProps) {
    super(scope, id);
    const { config, key, deployment } = props;
    this.config = config;
    const stack = Stack.of(this);
    const root = `arn:${stack.partition}:ssm:${config.region}:${config.account}:parameter${deployment.ssmRoot}`;
    const tokens = `${root}/*/approvals/*`;
    const tokensFinding = `IAM5[Resource::${tokens.replace(stack.partition, '<AWS::Partition>')}]`;
    const environment = deploymentVariables(deployment);

    this.topic = new sns.Topic(this, 'Topic', { displayName: `${deployment.name} approvals`, masterKey: key, enforceSSL: true });
    for (const email of config.approvers.emails) this.topic.addSubscription(new subs.EmailSubscription(email));

    this.page = new ApprovalPage(this, 'Page', { config, deployment, key });

    this.requestApproval = new FerryFunction(this, 'RequestApproval', {
      entry: lambdaEntry('approvals/request-approval.ts'),
      handler: 'handler',
      description: 'ferry: keeps an approval token for the approvers and notifies them',
      timeout: Duration.seconds(30),
      environment: { ...environment, FERRY_APPROVALS_TOPIC_ARN: this.topic.topicArn, FERRY_APPROVALS_KEY_ID: key.keyArn, FERRY_APPROVERS_ROLE_ARN: config.approvers.roleArn, FERRY_SEPARATE_FROM_STARTER: String(config.approvers.separateFromStarter), FERRY_APPROVAL_PAGE_URL: `${this.page.url}/` },
      logRetentionDays: config.logRetentionDays,
    });
    this.requestApproval.role.addToPolicy(new iam.PolicyStatement({ actions: ['ssm:PutParameter', 'ssm:GetParameter'], resources: [tokens] }));
    // A SecureString is encrypted with the key; publishing to the encrypted topic needs a data key of it.
    this.requestApproval.role.addToPolicy(new iam.PolicyStatement({ actions: ['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey'], resources: [key.keyArn] }));
    this.topic.grantPublish(this.requestApproval.role);
    acknowledgeOnPolicy(this.requestApproval.role, 'IAM5[Action::kms:GenerateDataKey*]', "Publishing to the encrypted topic needs data keys of ferry's one key (granted by the topic, on that key only).");
    acknowledgeOnPolicy(this.requestApproval.role, tokensFinding, `Tokens are kept at ${deployment.ssmRoot}/<migrationId>/approvals/<step>; the migration id comes with each execution, so the grant covers that namespace only.`);

    this.watch = new FerryFunction(this, 'WatchApprovals', {
      entry: lambdaEntry('approvals/watch-approvals.ts'),
      handler: 'handler',
      description: 'ferry: measures how long pending approvals have waited',
      timeout: Duration.seconds(60),
      environment,
      logRetentionDays: config.logRetentionDays,
    });
    this.watch.role.addToPolicy(new iam.PolicyStatement({ actions: ['ssm:GetParametersByPath'], resources: [root] }));
    new events.Rule(this, 'EveryQuarterHour', { schedule: events.Schedule.rate(Duration.minutes(15)), targets: [new targets.LambdaFunction(this.watch.fn)] });

    this.forget = new FerryFunction(this, 'ForgetApprovals', {
      entry: lambdaEntry('approvals/forget-approvals.ts'),
      handler: 'handler',
      description: 'ferry: removes the approval tokens of an execution that ended',
      timeout: Duration.seconds(60),
      environment,
      logRetentionDays: config.logRetentionDays,
    });
    this.forget.role.addToPolicy(new iam.PolicyStatement({ actions: ['ssm:GetParametersByPath'], resources: [root] }));
    this.forget.role.addToPolicy(new iam.PolicyStatement({ actions: ['ssm:DeleteParameter'], resources: [tokens] }));
    this.forget.role.addToPolicy(new iam.PolicyStatement({ actions: ['kms:Decrypt'], resources: [key.keyArn] }));
    acknowledgeOnPolicy(this.forget.role, tokensFinding, 'An ended execution may have left a token under any migration id of this deployment.');

    this.approvers = iam.Role.fromRoleArn(this, 'Approvers', config.approvers.roleArn, { mutable: true });
    this.approvers.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ssm:GetParameter', 'ssm:DeleteParameter'], resources: [tokens] }));
    this.approvers.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ssm:GetParametersByPath'], resources: [root] }));
    this.approvers.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['kms:Decrypt'], resources: [key.keyArn] }));
    // `ferry approve --aws` records who approved from the caller's identity, and checks who started the execution when asked to.
    this.approvers.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['cloudtrail:LookupEvents'], resources: ['*'] }));
    const approversPolicy = this.approvers.node.findChild('Policy');
    acknowledge(approversPolicy, tokensFinding, 'Approvers read and delete the tokens of any migration: which migration waits is only known at run time.');
    acknowledge(approversPolicy, 'IAM5[Resource::*]', 'cloudtrail:LookupEvents has no resource-level permission; it tells `ferry approve` who started the execution.');
  }

  /**
   * Lets the approvers complete the machines' tokens (with MFA when configured) and forgets the
   * tokens of any of their executions that ends, whether it was approved, failed, timed out or was stopped.
   */
  gate(machines: readonly MigrationStateMachine[]): void {
    const mfa = this.config.approvers.requireMfa ? { Bool: { 'aws:MultiFactorAuthPresent': 'true' } } : undefined;
    this.approvers.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['states:SendTaskSuccess', 'states:SendTaskFailure'], resources: machines.map((m) => m.arn), ...(mfa ? { conditions: mfa } : {}) }),
    );
    new events.Rule(this, 'ExecutionEnded', {
      description: 'ferry: an execution ended; its pending approval tokens are removed',
      eventPattern: {
        source: ['aws.states'],
        detailType: ['Step Functions Execution Status Change'],
        detail: { stateMachineArn: machines.map((m) => m.arn), status: ['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED'] },
      },
      targets: [new targets.LambdaFunction(this.forget.fn)],
    });
  }
}
