import { SNSClient } from '@aws-sdk/client-sns';
import { SSMClient } from '@aws-sdk/client-ssm';
import type { ApprovalRequest } from '../core/ports/approvals.ts';
import { requestAwsApproval } from '../adapters/approvals-aws.ts';
import { telemetry } from '../adapters/telemetry.ts';
import { deploymentFromEnv } from '../core/deployment.ts';

const { tracer } = telemetry();
const ssm = tracer.captureAWSv3Client(new SSMClient({}));
const sns = tracer.captureAWSv3Client(new SNSClient({}));
const root = deploymentFromEnv().ssmRoot;

/**
 * The Lambda behind every approval Task (`lambda:invoke.waitForTaskToken`): keeps the callback
 * token where only ferry's deciding functions can read it and tells the approvers what to approve
 * and how. The execution then waits until a decision (the page, or `ferry approve … --aws` through
 * the decision endpoint) completes the token, or the Task's timeout fails it.
 */
export async function handler(event: ApprovalRequest & { machine?: string }): Promise<{ requested: true }> {
  await requestAwsApproval(event, {
    ssm,
    sns,
    topicArn: process.env.FERRY_APPROVALS_TOPIC_ARN!,
    keyId: process.env.FERRY_APPROVALS_KEY_ID!,
    approvers: process.env.FERRY_APPROVERS_ROLE_ARN,
    root,
    separateFromStarter: process.env.FERRY_SEPARATE_FROM_STARTER === 'true',
    pageUrl: process.env.FERRY_APPROVAL_PAGE_URL,
  });
  return { requested: true };
}
