import { SNSClient } from '@aws-sdk/client-sns';
import { SSMClient } from '@aws-sdk/client-ssm';
import type { ApprovalRequest } from '../core/ports/approvals.ts';
import { requestAwsApproval } from '../adapters/approvals-aws.ts';

const ssm = new SSMClient({});
const sns = new SNSClient({});

/**
 * The Lambda behind every approval Task (`lambda:invoke.waitForTaskToken`): keeps the callback
 * token where only approvers can read it and tells them what to approve and how. The execution
 * then waits until `ferry approve … --aws` completes the token, or the Task's timeout fails it.
 */
export async function handler(event: ApprovalRequest & { machine?: string }): Promise<{ requested: true }> {
  await requestAwsApproval(event, {
    ssm,
    sns,
    topicArn: process.env.FERRY_APPROVALS_TOPIC_ARN!,
    keyId: process.env.FERRY_APPROVALS_KEY_ID!,
    approvers: process.env.FERRY_APPROVERS_ROLE_ARN,
  });
  return { requested: true };
}
