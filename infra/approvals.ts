import { Duration, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import type { FerryConfig } from './config.ts';
import { acknowledge, FerryFunction, lambdaEntry } from './workers.ts';

export interface ApprovalsProps {
  readonly config: FerryConfig;
  /** Encrypts the callback tokens and the topic. */
  readonly key: kms.IKey;
}

/**
 * Approvals on AWS: the function every approval Task invokes with its callback token, which it
 * keeps as a SecureString only the approvers' role can decrypt and announces on an SNS topic with
 * the exact command to run; and a scheduled watch that measures how long approvals have waited.
 */
export class Approvals extends Construct {
  readonly topic: sns.Topic;
  readonly requestApproval: FerryFunction;
  readonly watch: FerryFunction;
  readonly approvers: iam.IRole;

  constructor(scope: Construct, id: string, props: ApprovalsProps) {
    super(scope, id);
    const { config, key } = props;
    const stack = Stack.of(this);
    const tokens = `arn:${stack.partition}:ssm:${config.region}:${config.account}:parameter/ferry/*/approvals/*`;

    this.topic = new sns.Topic(this, 'Topic', { displayName: 'ferry approvals', masterKey: key, enforceSSL: true });
    for (const email of config.approvers.emails) this.topic.addSubscription(new subs.EmailSubscription(email));

    this.requestApproval = new FerryFunction(this, 'RequestApproval', {
      entry: lambdaEntry('approvals/request-approval.ts'),
      handler: 'handler',
      description: 'ferry: keeps an approval token for the approvers and notifies them',
      timeout: Duration.seconds(30),
      environment: { FERRY_APPROVALS_TOPIC_ARN: this.topic.topicArn, FERRY_APPROVALS_KEY_ID: key.keyArn, FERRY_APPROVERS_ROLE_ARN: config.approvers.roleArn },
      logRetentionDays: config.logRetentionDays,
    });
    this.requestApproval.role.addToPolicy(new iam.PolicyStatement({ actions: ['ssm:PutParameter'], resources: [tokens] }));
    key.grantEncryptDecrypt(this.requestApproval.role);
    this.topic.grantPublish(this.requestApproval.role);
    const tokensFinding = `IAM5[Resource::${tokens.replace(stack.partition, '<AWS::Partition>')}]`;
    acknowledge(this.requestApproval, tokensFinding, 'Tokens are kept at /ferry/<migrationId>/approvals/<step>; the migration id comes with each execution, so the grant covers that namespace only.');
    acknowledge(this.requestApproval, 'IAM5[Action::kms:GenerateDataKey*]', "Encrypting a SecureString and publishing to the encrypted topic need data keys of ferry's one key, and only of it.");
    acknowledge(this.requestApproval, 'IAM5[Action::kms:ReEncrypt*]', "Granted with encrypt/decrypt on ferry's one key, the only resource of the statement.");

    this.watch = new FerryFunction(this, 'WatchApprovals', {
      entry: lambdaEntry('approvals/watch-approvals.ts'),
      handler: 'handler',
      description: 'ferry: measures how long pending approvals have waited',
      timeout: Duration.seconds(60),
      logRetentionDays: config.logRetentionDays,
    });
    this.watch.role.addToPolicy(new iam.PolicyStatement({ actions: ['ssm:GetParametersByPath'], resources: [`arn:${stack.partition}:ssm:${config.region}:${config.account}:parameter/ferry`] }));
    new events.Rule(this, 'EveryQuarterHour', { schedule: events.Schedule.rate(Duration.minutes(15)), targets: [new targets.LambdaFunction(this.watch.fn)] });

    this.approvers = iam.Role.fromRoleArn(this, 'Approvers', config.approvers.roleArn, { mutable: true });
    this.approvers.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ssm:GetParameter', 'ssm:DeleteParameter'], resources: [tokens] }));
    this.approvers.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ssm:GetParametersByPath'], resources: [`arn:${stack.partition}:ssm:${config.region}:${config.account}:parameter/ferry`] }));
    key.grantDecrypt(this.approvers);
    acknowledge(this, tokensFinding, 'Approvers read and delete the tokens of any migration: which migration waits is only known at run time.');
  }
}
