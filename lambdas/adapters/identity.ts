import { LookupEventsCommand, type CloudTrailClient } from '@aws-sdk/client-cloudtrail';
import { DescribeExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';

/**
 * Who a principal ARN is, as a person, when AWS itself says so; null when the name was chosen by
 * whoever asked for the credentials.
 * - An IAM user: its ARN.
 * - An IAM Identity Center session (a role `AWSReservedSSO_…`): Identity Center names the session
 *   after the user who signed in; nobody else can choose that name.
 * - Any other role session (`sts:AssumeRole`), a federated user: the caller chose the session's
 *   name, so two of them may be one person under two names, and one name may be anyone.
 */
export function personOf(arn: string): string | null {
  const user = /^arn:aws[a-z-]*:iam::(\d{12}):user\/(?:.+\/)?([^/]+)$/.exec(arn);
  if (user) return `iam-user:${user[1]}:${user[2]}`;
  const sso = /^arn:aws[a-z-]*:sts::(\d{12}):assumed-role\/AWSReservedSSO_[^/]+\/([^/]+)$/.exec(arn);
  if (sso) return `identity-center:${sso[1]}:${sso[2]!.toLowerCase()}`;
  return null;
}

/** Why a principal cannot be told apart from another person, for a refusal. */
export function unknownPerson(arn: string): string {
  return `${arn} is a role session whose name was chosen by whoever assumed the role, so it does not say which person it is`;
}

/** The role name of an assumed-role session ARN (`…:assumed-role/<role>/<session>`), or null. */
export function roleOfSession(arn: string): string | null {
  return /^arn:aws[a-z-]*:sts::\d{12}:assumed-role\/([^/]+)\/[^/]+$/.exec(arn)?.[1] ?? null;
}

/** Whether an execution handed over to another: its own history shows it started that one (SfnExecutionRegistry.handedOver). */
export type HandedOver = (from: string, to: string) => Promise<boolean>;

/**
 * Who started an execution: every principal whose StartExecution CloudTrail records as returning
 * it. More than one may: StartExecution repeated with the same name and input answers with the
 * running execution, so someone else's repeat names it too, and which call came first is not
 * something to rely on; separation of duties refuses a decider who is any of them. A continuation
 * names the execution before it in its input (`handedOverBy`); that is followed only when the
 * execution named has the continuation's start in its own history. An input anyone could have
 * written is not evidence: an execution a person started with `handedOverBy` in its input is that
 * person's. Empty when CloudTrail does not (yet) say.
 */
export async function startedBy(sfn: SFNClient, trail: CloudTrailClient, executionArn: string, handedOver: HandedOver): Promise<string[]> {
  let arn = executionArn;
  for (let hops = 0; hops < 100; hops++) {
    const d = await sfn.send(new DescribeExecutionCommand({ executionArn: arn }));
    const input = JSON.parse(d.input ?? '{}') as { handedOverBy?: unknown };
    if (typeof input.handedOverBy === 'string' && (await handedOver(input.handedOverBy, arn))) {
      arn = input.handedOverBy;
      continue;
    }
    const at = d.startDate ?? new Date();
    const starters = new Set<string>();
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
        if (event.responseElements?.executionArn === arn) starters.add(event.userIdentity?.arn ?? 'an unknown principal');
      }
      NextToken = page.NextToken;
    } while (NextToken);
    return [...starters];
  }
  return [];
}
