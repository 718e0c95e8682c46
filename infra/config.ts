import { z } from 'zod';
import { connectionsSchema } from '../lambdas/adapters/aws.ts';
import { CAPS, type CappedField } from '../lambdas/core/caps.ts';
import { deployment, ENVIRONMENT_NAME, type Deployment } from '../lambdas/core/deployment.ts';

/** The retention periods CloudFormation accepts for a log group, in days. */
export const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] as const;

const cap = (field: CappedField) => z.number().int().min(1, 'at least 1').max(CAPS[field].most, `at most ${CAPS[field].most}`).default(CAPS[field].default);

const roleArn = z
  .string()
  .regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/, 'must be the ARN of an IAM role that exists, e.g. arn:aws:iam::123456789012:role/ferry-approvers');

/**
 * One environment's block of the `ferry` context of cdk.json: everything the stack needs to know
 * about the account, with no lookups, so `cdk synth` runs offline. Connection names here are the
 * names inputs use. Roles named here are existing roles the stack adds policies to.
 */
export const ferryConfigSchema = z.strictObject({
  account: z.string().regex(/^\d{12}$/, 'must be the 12-digit account id'),
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be a region like eu-west-1'),
  /** Subnets and security groups of the Lambdas that open MySQL sessions (host connections) or reach a CouchDB inside the VPC. */
  vpc: z
    .strictObject({
      vpcId: z.string().regex(/^vpc-[0-9a-f]+$/, 'must be a VPC id like vpc-0a1b2c3d'),
      availabilityZones: z.array(z.string()).min(1),
      privateSubnetIds: z.array(z.string().regex(/^subnet-[0-9a-f]+$/, 'must be a subnet id')).min(1),
      securityGroupIds: z.array(z.string().regex(/^sg-[0-9a-f]+$/, 'must be a security group id')).min(1),
      /**
       * How the functions in the subnets reach AWS APIs (Secrets Manager, SSM, Step Functions, the
       * RDS Data API): `endpoints` creates interface endpoints in the subnets; `nat` says the
       * subnets already route to the internet through a NAT gateway.
       */
      awsApis: z.enum(['endpoints', 'nat']).default('endpoints'),
    })
    .optional(),
  connections: connectionsSchema,
  approvers: z.strictObject({
    roleArn,
    emails: z.array(z.string().email()).default([]),
    /** Only sessions signed in with MFA may complete an approval (the aws:MultiFactorAuthPresent condition). */
    requireMfa: z.boolean().default(true),
    /**
     * The decision function refuses an approval by the person who started the execution. People
     * are told apart by names AWS sets (IAM Identity Center users, IAM users), so the approvers'
     * role must then be an Identity Center permission set's role.
     */
    separateFromStarter: z.boolean().default(false),
    /**
     * The approval page: a Cognito user pool whose `approvers` group may decide. `mfa`: "required"
     * (every sign-in with a one-time code) or "optional". `domainPrefix`: the hosted UI's
     * `<prefix>.auth.<region>.amazoncognito.com` (default `<deployment name>-<account>`).
     */
    page: z
      .strictObject({
        /** Left out: "required" when approvers.requireMfa is (the default), else "optional". */
        mfa: z.enum(['required', 'optional']).optional(),
        domainPrefix: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, 'lower-case letters, digits and -, at most 63, not starting or ending with -').optional(),
      })
      .prefault({}),
  })
    // The page decides through the same gate as `ferry approve --aws`: a page that lets approvers
    // in without MFA would undo requireMfa.
    .refine((a) => !(a.requireMfa && a.page.mfa === 'optional'), {
      path: ['page', 'mfa'],
      message:
        '"optional" contradicts approvers.requireMfa: true (approvers would decide on the page without the MFA the deployment requires): leave approvers.page.mfa out (or "required"), or set approvers.requireMfa to false',
    })
    .superRefine((a, ctx) => {
      if (a.separateFromStarter && !isIdentityCenterRole(a.roleArn)) {
        ctx.addIssue({
          code: 'custom',
          path: ['roleArn'],
          message:
            'approvers.separateFromStarter needs an approvers role whose sessions AWS names after the person: an IAM Identity Center permission set\'s role (arn:aws:iam::<account>:role/aws-reserved/sso.amazonaws.com/<region>/AWSReservedSSO_<set>_<id>). A role anyone assumes names its sessions as they choose, so ferry could not tell the approver from the starter. Use such a role, or set separateFromStarter to false.',
        });
      }
    }),
  operators: z.strictObject({ roleArn: roleArn.optional(), emails: z.array(z.string().email()).default([]) }).prefault({}),
  /**
   * Caps on the knobs whose top values switch a protection off (lambdas/core/caps.ts): an input or
   * a live knob above them is refused. The functions get them in their environment.
   */
  caps: z
    .strictObject({
      throttle: z.strictObject({ maxThreadsRunning: cap('throttle.maxThreadsRunning') }).prefault({}),
      cleanup: z.strictObject({ batchRows: cap('cleanup.batchRows') }).prefault({}),
    })
    .prefault({}),
  /** Roles of the applications that read the flags (e.g. the edxapp or CommCare web servers). */
  flagReaderRoleArns: z.array(roleArn).default([]),
  alarms: z
    .strictObject({
      /** Alarm when a machine spent more than this many minutes of an hour throttled. */
      throttledMinutesPerHour: z.number().int().min(1).max(60).default(30),
      /** Alarm when an approval has waited longer than this. */
      approvalWaitingHours: z.number().min(1).max(168).default(24),
    })
    .prefault({}),
  logRetentionDays: z
    .number()
    .int()
    .refine((d) => (LOG_RETENTION_DAYS as readonly number[]).includes(d), `must be one of the periods CloudFormation accepts: ${LOG_RETENTION_DAYS.join(', ')}`)
    .default(365),
});

/** Whether a role is an IAM Identity Center permission set's: its sessions are named after the person, and only Identity Center may change its policies. */
export function isIdentityCenterRole(roleArn: string): boolean {
  return /:role\/aws-reserved\/sso\.amazonaws\.com\/(?:[a-z0-9-]+\/)?AWSReservedSSO_[^/]+$/.test(roleArn);
}

export type FerryConfig = z.output<typeof ferryConfigSchema>;

function refuse(path: string, message: string): never {
  throw new Error(`cdk.json context "ferry"${path ? `.${path}` : ''}: ${message}`);
}

export function parseConfig(raw: unknown, path = ''): FerryConfig {
  const result = ferryConfigSchema.safeParse(raw);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  return refuse([path, ...issue.path.map(String)].filter(Boolean).join('.'), issue.message);
}

/** An environment to deploy: its names and its configuration. */
export interface Environment {
  readonly env: string | null;
  readonly deployment: Deployment;
  readonly config: FerryConfig;
}

/**
 * The environments of the `ferry` context: `{ "environments": { "staging": {…}, "production": {…} } }`
 * (each deployed as `ferry-<env>`, chosen with `-c env=<env>`; all of them when none is chosen), or
 * one configuration deployed as `ferry`.
 */
export function environments(raw: unknown, chosen?: string): Environment[] {
  const ctx = (raw ?? {}) as Record<string, unknown>;
  if (ctx && typeof ctx === 'object' && 'environments' in ctx) {
    const all = ctx.environments as Record<string, unknown>;
    const names = Object.keys(all ?? {});
    if (names.length === 0) refuse('environments', 'name at least one environment, e.g. { "staging": { … } }');
    for (const n of names) if (!ENVIRONMENT_NAME.test(n)) refuse(`environments.${n}`, 'environment names are lowercase letters, digits and hyphens, starting with a letter (at most 20)');
    if (chosen !== undefined && !names.includes(chosen)) refuse('environments', `no environment "${chosen}"; choose one of ${names.join(', ')} (-c env=<name>)`);
    return (chosen === undefined ? names : [chosen]).map((env) => ({ env, deployment: deployment(env), config: parseConfig(all[env], `environments.${env}`) }));
  }
  if (chosen !== undefined) refuse('', `-c env=${chosen} given, but the context has no "environments": put each environment's block under "environments"`);
  return [{ env: null, deployment: deployment(), config: parseConfig(raw) }];
}
