import { SSMClient } from '@aws-sdk/client-ssm';
import { AwsApprovals } from '../adapters/approvals-aws.ts';
import { telemetry } from '../adapters/telemetry.ts';
import { deploymentFromEnv } from '../core/deployment.ts';

const { logger, tracer } = telemetry();
const approvals = new AwsApprovals(tracer.captureAWSv3Client(new SSMClient({})), undefined, deploymentFromEnv().ssmRoot);

/** EventBridge's "Step Functions Execution Status Change" event, the fields read here. */
export interface ExecutionEnded {
  readonly detail: { readonly executionArn: string; readonly status: string };
}

/**
 * Runs when an execution of one of the deployment's machines ends: removes the approval tokens it
 * left, so the "approval waiting" alarm and `ferry status` only show approvals something waits for.
 */
export async function handler(event: ExecutionEnded): Promise<{ removed: string[] }> {
  const removed = await approvals.forgetExecution(event.detail.executionArn);
  if (removed.length) logger.info('removed the approval tokens of an execution that ended', { execution: event.detail.executionArn, status: event.detail.status, removed });
  return { removed };
}
