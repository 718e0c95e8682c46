import { AdminListGroupsForUserCommand, CognitoIdentityProviderClient } from '@aws-sdk/client-cognito-identity-provider';
import { SFNClient } from '@aws-sdk/client-sfn';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { CognitoJwtVerifier } from 'aws-jwt-verify';
import { AwsApprovals } from '../adapters/approvals-aws.ts';
import { SsmFlagStore } from '../adapters/flags-ssm.ts';
import { telemetry } from '../adapters/telemetry.ts';
import { deploymentFromEnv } from '../core/deployment.ts';
import { handleAwsPage, type HttpEvent, type HttpResult, type IdTokenVerifier } from './page-aws.ts';

const { tracer, logger } = telemetry();
const ssm = tracer.captureAWSv3Client(new SSMClient({}));
const sfn = tracer.captureAWSv3Client(new SFNClient({}));
const cognito = tracer.captureAWSv3Client(new CognitoIdentityProviderClient({}));
const deployment = deploymentFromEnv();

/** The page client's id: kept in SSM by the stack (the client names the page's address, which names this function). */
let clientId: Promise<string> | undefined;
const readClientId = () =>
  (clientId ??= ssm.send(new GetParameterCommand({ Name: process.env.FERRY_PAGE_CLIENT_PARAMETER! })).then((o) => {
    if (!o.Parameter?.Value) throw new Error(`${process.env.FERRY_PAGE_CLIENT_PARAMETER} holds no client id`);
    return o.Parameter.Value;
  }));

let verifier: Promise<IdTokenVerifier> | undefined;
const verify: IdTokenVerifier = async (token) => {
  verifier ??= readClientId().then((id) => {
    const v = CognitoJwtVerifier.create({ userPoolId: process.env.FERRY_PAGE_USER_POOL_ID!, tokenUse: 'id', clientId: id });
    return (t: string) => v.verify(t);
  });
  return (await verifier)(token);
};

/** The approval page on AWS (see page-aws.ts). */
export async function handler(event: HttpEvent): Promise<HttpResult> {
  const result = await handleAwsPage(event, {
    approvals: new AwsApprovals(ssm, sfn, deployment.ssmRoot),
    sfn,
    ssm,
    knobs: new SsmFlagStore(ssm, deployment.ssmRoot, 'knobs'),
    root: deployment.ssmRoot,
    deployment: deployment.name,
    hostedUi: process.env.FERRY_PAGE_HOSTED_UI!,
    clientId: readClientId,
    verify,
    log: (message, entry) => logger.info(message, entry),
    async groupsNow(username) {
      const groups: string[] = [];
      let NextToken: string | undefined;
      do {
        const out = await cognito.send(new AdminListGroupsForUserCommand({ UserPoolId: process.env.FERRY_PAGE_USER_POOL_ID!, Username: username, NextToken }));
        groups.push(...(out.Groups ?? []).map((g) => g.GroupName ?? ''));
        NextToken = out.NextToken;
      } while (NextToken);
      return groups;
    },
  });
  // Who looked and who decided is in the log; never a token or a cookie.
  logger.info('approval page', { method: event.requestContext.http.method, path: event.rawPath, status: result.statusCode });
  return result;
}
