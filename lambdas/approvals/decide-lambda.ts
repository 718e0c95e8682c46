import { CloudTrailClient } from '@aws-sdk/client-cloudtrail';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SSMClient } from '@aws-sdk/client-ssm';
import { AwsApprovals } from '../adapters/approvals-aws.ts';
import { SfnExecutionRegistry } from '../adapters/aws.ts';
import { startedBy } from '../adapters/identity.ts';
import { telemetry } from '../adapters/telemetry.ts';
import { deploymentFromEnv } from '../core/deployment.ts';
import { handleDecide, type EndpointResult, type SignedEvent } from './decide-endpoint.ts';

const { tracer, logger } = telemetry();
const ssm = tracer.captureAWSv3Client(new SSMClient({}));
const sfn = tracer.captureAWSv3Client(new SFNClient({}));
const trail = tracer.captureAWSv3Client(new CloudTrailClient({}));
const deployment = deploymentFromEnv();
const registry = new SfnExecutionRegistry(sfn);

/** The decision endpoint (see decide-endpoint.ts). */
export async function handler(event: SignedEvent): Promise<EndpointResult> {
  return handleDecide(event, process.env.FERRY_APPROVERS_ROLE_ARN!, {
    approvals: new AwsApprovals(ssm, sfn, deployment.ssmRoot),
    deployment: deployment.name,
    starterOf: (execution) => startedBy(sfn, trail, execution, (from, to) => registry.handedOver(from, to)),
    log: (message, entry) => logger.info(message, entry),
  });
}
