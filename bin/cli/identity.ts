import { LookupEventsCommand, type CloudTrailClient } from '@aws-sdk/client-cloudtrail';
import { DescribeExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { GetCallerIdentityCommand, type STSClient } from '@aws-sdk/client-sts';

/** Who is calling AWS: the ARN STS knows them by (an assumed role's session, or an IAM user). */
export async function callerArn(sts: STSClient): Promise<string> {
  const out = await sts.send(new GetCallerIdentityCommand({}));
  if (!out.Arn) throw new Error('STS did not say who is calling');
  return out.Arn;
}

/**
 * The person behind a principal ARN: an assumed role's session name (what an SSO or `assume-role`
 * sign-in names after the person), or the IAM user's ARN.
 */
export function personOf(arn: string): string {
  const assumed = /^arn:aws[a-z-]*:sts::\d{12}:assumed-role\/[^/]+\/(.+)$/.exec(arn);
  return assumed ? `session:${assumed[1]}` : arn;
}

/**
 * Who started an execution, from CloudTrail's StartExecution event. A continuation was started by
 * the execution before it: its input's `handedOverBy` is followed back to the execution a person started.
 */
export async function startedBy(sfn: SFNClient, trail: CloudTrailClient, executionArn: string): Promise<string | null> {
  let arn = executionArn;
  for (let hops = 0; hops < 100; hops++) {
    const d = await sfn.send(new DescribeExecutionCommand({ executionArn: arn }));
    const input = JSON.parse(d.input ?? '{}') as { handedOverBy?: string };
    if (input.handedOverBy) {
      arn = input.handedOverBy;
      continue;
    }
    const at = d.startDate ?? new Date();
    let NextToken: string | undefined;
    do {
      const page = await trail.send(
        new LookupEventsCommand({
          LookupAttributes: [{ AttributeKey: 'EventName', AttributeValue: 'StartExecution' }],
          StartTime: new Date(at.getTime() - 5 * 60_000),
          EndTime: new Date(at.getTime() + 5 * 60_000),
          NextToken,
        }),
      );
      for (const e of page.Events ?? []) {
        const event = JSON.parse(e.CloudTrailEvent ?? '{}') as { responseElements?: { executionArn?: string }; userIdentity?: { arn?: string } };
        if (event.responseElements?.executionArn === arn) return event.userIdentity?.arn ?? null;
      }
      NextToken = page.NextToken;
    } while (NextToken);
    return null;
  }
  return null;
}
