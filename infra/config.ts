import { z } from 'zod';
import { connectionsSchema } from '../lambdas/adapters/aws.ts';

const arn = (service: string) => z.string().regex(new RegExp(`^arn:aws[a-z-]*:${service}:`), `must be an ${service} ARN`);

/**
 * The `ferry` context of cdk.json: everything the stack needs to know about the account, with no
 * lookups, so `cdk synth` runs offline. Connection names here are the names inputs use.
 */
export const ferryConfigSchema = z.strictObject({
  account: z.string().regex(/^\d{12}$/, 'must be the 12-digit account id'),
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be a region like eu-west-1'),
  /** Subnets and security groups of the Lambdas that reach MySQL hosts or CouchDB inside a VPC. */
  vpc: z
    .strictObject({
      vpcId: z.string(),
      availabilityZones: z.array(z.string()).min(1),
      privateSubnetIds: z.array(z.string()).min(1),
      securityGroupIds: z.array(z.string()).min(1),
    })
    .optional(),
  connections: connectionsSchema,
  approvers: z.strictObject({ roleArn: arn('iam'), emails: z.array(z.string().email()).default([]) }),
  operators: z.strictObject({ roleArn: arn('iam').optional(), emails: z.array(z.string().email()).default([]) }).prefault({}),
  /** Roles of the applications that read the flags (e.g. the edxapp or CommCare web servers). */
  flagReaderRoleArns: z.array(arn('iam')).default([]),
  alarms: z
    .strictObject({
      /** Alarm when a machine spent more than this many minutes of an hour throttled. */
      throttledMinutesPerHour: z.number().int().min(1).max(60).default(30),
      /** Alarm when an approval has waited longer than this. */
      approvalWaitingHours: z.number().min(1).max(168).default(24),
    })
    .prefault({}),
  logRetentionDays: z.number().int().default(365),
});

export type FerryConfig = z.output<typeof ferryConfigSchema>;

export function parseConfig(raw: unknown): FerryConfig {
  const result = ferryConfigSchema.safeParse(raw);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  throw new Error(`cdk.json context "ferry".${issue.path.join('.')}: ${issue.message}`);
}
