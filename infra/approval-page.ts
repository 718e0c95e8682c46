import { CfnOutput, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { capVariables } from '../lambdas/core/caps.ts';
import { decideUrlParameter, deploymentVariables, stateMachineName, type Deployment } from '../lambdas/core/deployment.ts';
import { APPROVERS_GROUP } from '../lambdas/approvals/page.ts';
import type { FerryConfig } from './config.ts';
import { acknowledge, acknowledgeOnPolicy, FerryFunction, lambdaEntry } from './workers.ts';

export interface ApprovalPageProps {
  readonly config: FerryConfig;
  readonly deployment: Deployment;
  /** The key the approval tokens are encrypted with. */
  readonly key: kms.IKey;
}

/** The route `ferry approve --aws` posts its decisions to. */
export const DECIDE_PATH = '/api/decide';

/**
 * The approval page on AWS, and the one way decisions are taken: an HTTP API and a Cognito user
 * pool (no self sign-up, MFA required unless configured otherwise) whose `approvers` group alone
 * may decide. The page's Lambda runs the sign-in (authorization code with PKCE), verifies the ID
 * token on every request and takes decisions. `POST /api/decide`, with IAM authorization, goes to
 * the Decide function, which takes the decisions of `ferry approve --aws`. These two functions
 * alone can read the callback tokens and complete them.
 */
export class ApprovalPage extends Construct {
  readonly url: string;
  readonly userPool: cognito.UserPool;
  readonly fn: FerryFunction;
  readonly decide: FerryFunction;
  /** The decision endpoint's execute-api ARN, for the approvers' `execute-api:Invoke`. */
  readonly decideArn: string;
  /** The SSM parameter holding the decision endpoint's address. */
  readonly decideUrlParameterArn: string;

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
    const machines = (['table-copy', 'doctype-copy', 'online-alter'] as const).map((m) => `arn:${stack.partition}:states:${config.region}:${config.account}:stateMachine:${stateMachineName(deployment, m)}`);
    const executions = machines.map((m) => m.replace(':stateMachine:', ':execution:') + ':*');
    /** What taking decisions needs: the tokens (read, decrypt, forget), the pending list, the executions, and completing their tasks. */
    const mayDecide = (role: iam.IRole, why: string) => {
      role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ssm:GetParametersByPath'], resources: [root] }));
      role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ssm:GetParameter', 'ssm:DeleteParameter'], resources: [tokens] }));
      role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['kms:Decrypt'], resources: [key.keyArn] }));
      role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['states:SendTaskSuccess', 'states:SendTaskFailure'], resources: machines }));
      role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['states:DescribeExecution', 'states:GetExecutionHistory'], resources: executions }));
      for (const r of [tokens, ...executions]) acknowledgeOnPolicy(role, `IAM5[Resource::${r.replace(stack.partition, '<AWS::Partition>')}]`, why);
    };
    const role = this.fn.role;
    mayDecide(role, 'The page shows and completes the pending approvals of any migration of this deployment; which ones wait is known only at run time.');
    role.addToPolicy(new iam.PolicyStatement({ actions: ['ssm:GetParameter'], resources: [`${root}/page/client-id`, `${root}/*/status/reverify`, `${root}/*/status/lag`] }));
    role.addToPolicy(new iam.PolicyStatement({ actions: ['ssm:GetParametersByPath'], resources: [`${root}/*/knobs`] }));
    // A decision asks the user pool whether the person is still an approver.
    role.addToPolicy(new iam.PolicyStatement({ actions: ['cognito-idp:AdminListGroupsForUser'], resources: [this.userPool.userPoolArn] }));
    for (const r of [`${root}/*/status/reverify`, `${root}/*/status/lag`, `${root}/*/knobs`]) {
      acknowledgeOnPolicy(role, `IAM5[Resource::${r.replace(stack.partition, '<AWS::Partition>')}]`, "The page shows the re-verification, the old home's lag and the knobs of any migration of this deployment; which ones exist is known only at run time.");
    }

    this.decide = new FerryFunction(this, 'Decide', {
      entry: lambdaEntry('approvals/decide-lambda.ts'),
      handler: 'handler',
      description: 'ferry: takes the decisions of ferry approve --aws (the caller signed the request; IAM authorization)',
      timeout: Duration.seconds(29),
      environment: { ...deploymentVariables(deployment), FERRY_APPROVERS_ROLE_ARN: config.approvers.roleArn },
      logRetentionDays: config.logRetentionDays,
    });
    mayDecide(this.decide.role, 'The decision endpoint completes the pending approvals of any migration of this deployment; which ones wait is known only at run time.');
    // Who started an execution, where the deployment separates duties.
    this.decide.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['cloudtrail:LookupEvents'], resources: ['*'] }));
    acknowledgeOnPolicy(this.decide.role, 'IAM5[Resource::*]', 'cloudtrail:LookupEvents has no resource-level permission; it tells the decision function who started an execution.');

    const accessLogs = new logs.LogGroup(this, 'AccessLogs', { retention: config.logRetentionDays as logs.RetentionDays, removalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE });
    const api = new apigw.HttpApi(this, 'Api', {
      apiName: `${deployment.name}-approvals`,
      description: 'ferry: the approval page',
      defaultIntegration: new HttpLambdaIntegration('Page', this.fn.fn),
      createDefaultStage: true,
    });
    const [decideRoute] = api.addRoutes({ path: DECIDE_PATH, methods: [apigw.HttpMethod.POST], integration: new HttpLambdaIntegration('Decide', this.decide.fn), authorizer: new HttpIamAuthorizer() });
    const stage = api.defaultStage!.node.defaultChild as apigw.CfnStage;
    stage.accessLogSettings = {
      destinationArn: accessLogs.logGroupArn,
      format: JSON.stringify({ requestId: '$context.requestId', ip: '$context.identity.sourceIp', method: '$context.httpMethod', path: '$context.path', status: '$context.status', time: '$context.requestTime' }),
    };
    stage.defaultRouteSettings = { throttlingBurstLimit: 20, throttlingRateLimit: 10 };
    for (const route of api.node.findAll().filter((c) => c instanceof apigw.HttpRoute && c !== decideRoute)) {
      acknowledge(route, 'APIG4', 'The page signs people in itself (Cognito hosted UI, authorization code with PKCE) and verifies their ID token on every request: a browser cannot send the bearer header an API authorizer needs.');
    }
    this.url = api.apiEndpoint;
    this.decideArn = api.arnForExecuteApi('POST', DECIDE_PATH, api.defaultStage!.stageName);
    const decideUrl = new ssm.StringParameter(this, 'DecideUrl', { parameterName: decideUrlParameter(deployment.ssmRoot), stringValue: `${api.apiEndpoint}${DECIDE_PATH}`, description: 'ferry: the decision endpoint ferry approve --aws posts to' });
    this.decideUrlParameterArn = decideUrl.parameterArn;

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
