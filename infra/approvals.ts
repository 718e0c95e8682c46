import { CfnOutput, Duration, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { deploymentVariables, type Deployment } from '../lambdas/core/deployment.ts';
import { isIdentityCenterRole, type FerryConfig } from './config.ts';
import { ApprovalPage } from './approval-page.ts';
import type { MigrationStateMachine } from './state-machines.ts';
import { acknowledgeOnPolicy, FerryFunction, lambdaEntry } from './workers.ts';

export interface ApprovalsProps {
  readonly config: FerryConfig;
  /** Encrypts the callback tokens and the topic. */
  readonly key: kms.IKey;
  readonly deployment: Deployment;
}

/**
 * Approvals on AWS: the function every approval Task invokes with its callback token, which it
 * keeps as a SecureString only ferry's functions can decrypt and announces on an SNS topic with
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

  constructor(scope: Construct, id: string, props: ApprovalsProps) {
    super(scope, id);
    const { config, key, deployment } = props;
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

    // Approvers call the decision endpoint (with MFA when configured) and read its address; they
    // cannot read a callback token, decrypt it, or complete a task themselves.
    // An Identity Center permission set's role can only be changed in Identity Center: the
    // stack then says what to add to the permission set instead of attaching it.
    const managed = isIdentityCenterRole(config.approvers.roleArn);
    this.approvers = iam.Role.fromRoleArn(this, 'Approvers', config.approvers.roleArn, { mutable: !managed });
    // Identity Center signs people in itself (with MFA when its settings ask for it), and its
    // sessions carry no aws:MultiFactorAuthPresent: the condition would refuse every approver.
    const mfa = config.approvers.requireMfa && !managed ? { Bool: { 'aws:MultiFactorAuthPresent': 'true' } } : undefined;
    const may = [
      new iam.PolicyStatement({ actions: ['execute-api:Invoke'], resources: [this.page.decideArn], ...(mfa ? { conditions: mfa } : {}) }),
      new iam.PolicyStatement({ actions: ['ssm:GetParameter'], resources: [this.page.decideUrlParameterArn] }),
    ];
    if (!managed) for (const st of may) this.approvers.addToPrincipalPolicy(st);
    else {
      new CfnOutput(stack, 'ApproversPermissionSetPolicy', {
        value: stack.toJsonString(new iam.PolicyDocument({ statements: may }).toJSON()),
        description: `${deployment.name}: the inline policy the approvers' permission set needs (${config.approvers.roleArn} is managed by IAM Identity Center)`,
      });
    }
  }

  /** Forgets the tokens of any of the machines' executions that ends, whether it was approved, failed, timed out or was stopped. */
  gate(machines: readonly MigrationStateMachine[]): void {
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
