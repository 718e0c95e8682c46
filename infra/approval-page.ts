import { CfnOutput, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { capVariables } from '../lambdas/core/caps.ts';
import { deploymentVariables, stateMachineName, type Deployment } from '../lambdas/core/deployment.ts';
import { APPROVERS_GROUP } from '../lambdas/approvals/page.ts';
import type { FerryConfig } from './config.ts';
import { acknowledge, acknowledgeOnPolicy, FerryFunction, lambdaEntry } from './workers.ts';

export interface ApprovalPageProps {
  readonly config: FerryConfig;
  readonly deployment: Deployment;
  /** The key the approval tokens are encrypted with. */
  readonly key: kms.IKey;
}

/**
 * The approval page on AWS: an HTTP API whose every route goes to one Lambda, and a Cognito user
 * pool (no self sign-up, MFA required unless configured otherwise) whose `approvers` group alone
 * may decide. The Lambda runs the sign-in (authorization code with PKCE) and verifies the ID token
 * on every request; it reads the pending approvals and completes them as `ferry approve --aws` does.
 */
export class ApprovalPage extends Construct {
  readonly url: string;
  readonly userPool: cognito.UserPool;
  readonly fn: FerryFunction;

  constructor(scope: Construct, id: string, props: ApprovalPageProps) {
    super(scope, id);
    const { config, deployment, key } = props;
    const stack = Stack.of(this);
    const page = config.approvers.page;
    const mfaRequired = (page.mfa ?? (config.approvers.requireMfa ? 'required' : 'optional')) === 'required';

    this.userPool = new cognito.UserPool(this, 'Users', {
      userPoolName: `${deployment.name}-approvals`,
      selfSignUpEnabled: false,
      signInAliases: { username: true, email: true },
      mfa: mfaRequired ? cognito.Mfa.REQUIRED : cognito.Mfa.OPTIONAL,
      mfaSecondFactor: { otp: true, sms: false },
      passwordPolicy: { minLength: 14, requireDigits: true, requireLowercase: true, requireUppercase: true, requireSymbols: true, tempPasswordValidity: Duration.days(3) },
      accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
      featurePlan: cognito.FeaturePlan.PLUS,
      standardThreatProtectionMode: cognito.StandardThreatProtectionMode.FULL_FUNCTION,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    if (!mfaRequired) acknowledge(this.userPool, 'COG2', 'This deployment is configured without MFA for its approvers (approvers.requireMfa or approvers.page.mfa), e.g. a staging account; production requires it.');
    new cognito.CfnUserPoolGroup(this, 'Approvers', { userPoolId: this.userPool.userPoolId, groupName: APPROVERS_GROUP, description: 'May approve or reject ferry cut-overs and cleanups on the approval page' });
    const domainPrefix = page.domainPrefix ?? `${deployment.name}-${config.account}`;
    this.userPool.addDomain('Domain', { cognitoDomain: { domainPrefix } });
    const hostedUi = `https://${domainPrefix}.auth.${config.region}.amazoncognito.com`;

    const root = `arn:${stack.partition}:ssm:${config.region}:${config.account}:parameter${deployment.ssmRoot}`;
    const clientParameterName = `${deployment.ssmRoot}/page/client-id`;
    this.fn = new FerryFunction(this, 'Page', {
      entry: lambdaEntry('approvals/page-lambda.ts'),
      handler: 'handler',
      description: 'ferry: the approval page',
      timeout: Duration.seconds(29),
      environment: { ...deploymentVariables(deployment), ...capVariables(config.caps), FERRY_PAGE_USER_POOL_ID: this.userPool.userPoolId, FERRY_PAGE_HOSTED_UI: hostedUi, FERRY_PAGE_CLIENT_PARAMETER: clientParameterName },
      logRetentionDays: config.logRetentionDays,
    });
    const tokens = `${root}/*/approvals/*`;
    const role = this.fn.role;
    role.addToPolicy(new iam.PolicyStatement({ actions: ['ssm:GetParametersByPath'], resources: [root] }));
    role.addToPolicy(new iam.PolicyStatement({ actions: ['ssm:GetParameter', 'ssm:DeleteParameter'], resources: [tokens] }));
    role.addToPolicy(new iam.PolicyStatement({ actions: ['kms:Decrypt'], resources: [key.keyArn] }));
    role.addToPolicy(new iam.PolicyStatement({ actions: ['ssm:GetParameter'], resources: [`${root}/page/client-id`, `${root}/*/status/reverify`] }));
    role.addToPolicy(new iam.PolicyStatement({ actions: ['ssm:GetParametersByPath'], resources: [`${root}/*/knobs`] }));
    const machines = (['table-copy', 'doctype-copy', 'online-alter'] as const).map((m) => `arn:${stack.partition}:states:${config.region}:${config.account}:stateMachine:${stateMachineName(deployment, m)}`);
    role.addToPolicy(new iam.PolicyStatement({ actions: ['states:SendTaskSuccess', 'states:SendTaskFailure'], resources: machines }));
    const executions = machines.map((m) => m.replace(':stateMachine:', ':execution:') + ':*');
    role.addToPolicy(new iam.PolicyStatement({ actions: ['states:DescribeExecution'], resources: executions }));
    for (const r of [tokens, `${root}/*/status/reverify`, `${root}/*/knobs`, ...executions]) {
      acknowledgeOnPolicy(role, `IAM5[Resource::${r.replace(stack.partition, '<AWS::Partition>')}]`, 'The page shows and completes the pending approvals of any migration of this deployment; which ones wait is known only at run time.');
    }

    const accessLogs = new logs.LogGroup(this, 'AccessLogs', { retention: config.logRetentionDays as logs.RetentionDays, removalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE });
    const api = new apigw.HttpApi(this, 'Api', {
      apiName: `${deployment.name}-approvals`,
      description: 'ferry: the approval page',
      defaultIntegration: new HttpLambdaIntegration('Page', this.fn.fn),
      createDefaultStage: true,
    });
    const stage = api.defaultStage!.node.defaultChild as apigw.CfnStage;
    stage.accessLogSettings = {
      destinationArn: accessLogs.logGroupArn,
      format: JSON.stringify({ requestId: '$context.requestId', ip: '$context.identity.sourceIp', method: '$context.httpMethod', path: '$context.path', status: '$context.status', time: '$context.requestTime' }),
    };
    stage.defaultRouteSettings = { throttlingBurstLimit: 20, throttlingRateLimit: 10 };
    for (const route of api.node.findAll().filter((c) => c instanceof apigw.HttpRoute)) {
      acknowledge(route, 'APIG4', 'The page signs people in itself (Cognito hosted UI, authorization code with PKCE) and verifies their ID token on every request: a browser cannot send the bearer header an API authorizer needs.');
    }
    this.url = api.apiEndpoint;

    const client = this.userPool.addClient('Client', {
      userPoolClientName: `${deployment.name}-approval-page`,
      generateSecret: false,
      authFlows: {},
      oAuth: { flows: { authorizationCodeGrant: true }, scopes: [cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE], callbackUrls: [`${api.apiEndpoint}/callback`], logoutUrls: [`${api.apiEndpoint}/`] },
      preventUserExistenceErrors: true,
      idTokenValidity: Duration.hours(1),
      accessTokenValidity: Duration.hours(1),
      refreshTokenValidity: Duration.hours(8),
    });
    // Read by the page at run time: the client names the page's address, which names the page's function.
    new ssm.StringParameter(this, 'ClientId', { parameterName: clientParameterName, stringValue: client.userPoolClientId, description: 'ferry: the approval page client of the user pool' });
    new CfnOutput(stack, 'ApprovalPageUrl', { value: `${api.apiEndpoint}/`, description: `${deployment.name}: the approval page (sign in as a member of the ${APPROVERS_GROUP} group of ${deployment.name}-approvals)` });
  }
}
