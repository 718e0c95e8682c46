import { z } from 'zod';
import { overCap, type CappedField } from './caps.ts';
import { DEFAULT_CHUNK } from './chunker.ts';
import { InvalidInput } from './errors.ts';
import { PLAIN_NAME } from './identifiers.ts';
import { throttleQueryProblem } from './throttle-query.ts';
import { DEFAULT_THROTTLE } from './throttler.ts';

/** The pieces every machine's input schema is made of, so a field means the same in each. */

export const plainName = (what: string) =>
  z.string().regex(PLAIN_NAME, `must be a plain ${what} name: letters, digits, _ or $, at most 64 characters, no quotes, dots, spaces or ;`);

/** Connection names are looked up, never parsed as URLs: credentials stay out of the input. */
export const connectionName = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,62}$/, 'must be a connection name like "edxapp" (lower-case letters, digits, _ or -), never a URL or credentials');

export const migrationId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$/, 'must be 1-80 letters, digits, _ or -, starting with a letter or digit');

/** The approvals a migration asks for, in order. */
export const APPROVAL_STEPS = ['cutover', 'cleanup'] as const;

/**
 * Refuses a migration id or an approval step that is not one (a form, a command line, or a file
 * name made of them: `../` must never reach the file system), naming the field.
 */
export function checkApprovalName(id: string, step: string): void {
  const parsed = migrationId.safeParse(id);
  if (!parsed.success) throw new InvalidInput('migrationId', parsed.error.issues[0]!.message);
  if (!(APPROVAL_STEPS as readonly string[]).includes(step)) throw new InvalidInput('step', `must be ${APPROVAL_STEPS.map((s) => `"${s}"`).join(' or ')}`);
}

/** Decimal string, like every id in ferry: JSON numbers lose precision past 2^53. */
export const decimalString = z.string().regex(/^(0|[1-9][0-9]{0,19})$/, 'must be a non-negative whole number written as a string, e.g. "1000000"');

export const tableRef = z.strictObject({
  connection: connectionName,
  database: plainName('database'),
  table: plainName('table'),
});

export const flagName = z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,127}$/, 'flag names are letters, digits, _ . or -');
export const flagSet = z.record(flagName, z.string().max(4096, 'flag values are at most 4096 characters'));

/** A field's value checked against the deployment's cap on it (caps.ts), read when it is validated. */
function capped(field: CappedField, schema: z.ZodNumber): z.ZodNumber {
  return schema.superRefine((value, ctx) => {
    const problem = overCap(field, value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
}

/**
 * The fields an operator may change while a migration runs (`ferry set`, read at each chunk), each
 * with the rule the input schemas use for it: a knob is validated exactly like the input field.
 * Two have a cap the deployment sets below their bound (caps.ts).
 */
export const knobFields = {
  'chunk.targetMillis': z.number().int().min(10, 'at least 10 ms').max(60_000, 'at most 60000 ms'),
  'chunk.minRows': z.number().int().min(1, 'at least 1 row').max(1_000_000, 'at most 1,000,000 rows'),
  'chunk.maxRows': z.number().int().min(1, 'at least 1 row').max(1_000_000, 'at most 1,000,000 rows'),
  'throttle.maxThreadsRunning': capped('throttle.maxThreadsRunning', z.number().int().min(1, 'at least 1').max(100_000, 'at most 100000')),
  'throttle.replica.maxLagSeconds': z.number().int().min(0, 'at least 0').max(86_400, 'at most 86400 (a day)'),
  'throttle.waitSeconds': z.number().int().min(1, 'at least 1 second').max(3600, 'at most 3600 seconds'),
  'cleanup.batchRows': capped('cleanup.batchRows', z.number().int().min(1, 'at least 1 row').max(1_000_000, 'at most 1,000,000 rows')),
  'cleanup.batchDocs': z.number().int().min(1, 'at least 1 doc').max(10_000, 'at most 10,000 docs'),
  'cleanup.pauseMillis': z.number().int().min(0, 'at least 0 ms').max(60_000, 'at most 60000 ms'),
  'page.docs': z.number().int().min(1, 'at least 1 doc').max(10_000, 'at most 10,000 docs a page'),
} as const;

export type KnobName = keyof typeof knobFields;

/** Chunks sized by time within bounds (see chunker.ts). */
export const chunkSchema = z
  .strictObject({
    targetMillis: knobFields['chunk.targetMillis'].default(DEFAULT_CHUNK.targetMillis),
    minRows: knobFields['chunk.minRows'].default(DEFAULT_CHUNK.minRows),
    maxRows: knobFields['chunk.maxRows'].default(DEFAULT_CHUNK.maxRows),
  })
  .prefault({})
  .refine((c) => c.minRows <= c.maxRows, { message: 'minRows must not exceed maxRows', path: ['minRows'] });

/** When to wait before the next chunk (see throttler.ts). */
export const throttleSchema = z
  .strictObject({
    maxThreadsRunning: knobFields['throttle.maxThreadsRunning'].default(DEFAULT_THROTTLE.maxThreadsRunning),
    replica: z
      .strictObject({ connection: connectionName, maxLagSeconds: knobFields['throttle.replica.maxLagSeconds'].default(DEFAULT_THROTTLE.maxReplicaLagSeconds) })
      .optional(),
    /** Where `query` runs (default: the source's connection): a user granted only what the query reads. */
    connection: connectionName.optional(),
    /** Refused here when it could write, lock, sleep or wait; it runs read-only and timed (see throttle-query.ts). */
    query: z
      .string()
      .max(2000, 'at most 2000 characters')
      // any case spelled out: the JSON schema made from this one keeps the pattern but not an i flag
      .regex(/^\s*[Ss][Ee][Ll][Ee][Cc][Tt]\s/, 'must be a single SELECT statement, e.g. "SELECT COUNT(*) FROM information_schema.PROCESSLIST"')
      .superRefine((query, ctx) => {
        const problem = throttleQueryProblem(query);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional(),
    waitSeconds: knobFields['throttle.waitSeconds'].default(DEFAULT_THROTTLE.waitSeconds),
  })
  .prefault({});

/** How a table's rows are deleted from the source after the cut-over, in batches. */
export const rowCleanupFields = {
  batchRows: knobFields['cleanup.batchRows'].default(20_000),
  pauseMillis: knobFields['cleanup.pauseMillis'].default(0),
};

/**
 * While the cut-over approval is pending, what was verified is checked again, a pass at most this
 * often (0: not at all). See lambdas/<machine>/reverify.ts.
 */
export const reverifySchema = z
  .strictObject({ everySeconds: z.number().int().min(0).max(86_400, 'at most 86400 (a day)').default(600) })
  .prefault({});

export const executionSchema = z
  .strictObject({
    /** Loop iterations before handing over to a fresh execution (Standard workflows stop at 25,000 events). */
    maxLoopIterations: z.number().int().min(1).max(2000).default(1000),
  })
  .prefault({});

/** Key Step Functions adds to the input of an execution started by another one. */
const STARTED_BY = 'AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID';

/** Parses with the schema; the first problem becomes an InvalidInput naming the field and the fix. */
export function parseInput<T extends z.ZodType>(schema: T, raw: unknown): z.output<T> {
  const value = raw && typeof raw === 'object' && !Array.isArray(raw) ? { ...(raw as Record<string, unknown>) } : raw;
  if (value && typeof value === 'object') delete (value as Record<string, unknown>)[STARTED_BY];
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.length ? issue.path.join('.') : '(input)';
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    message = `unknown field ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}: remove it or check its spelling`;
  } else if (issue.code === 'invalid_type') {
    message = `${issue.message}; fix the value of this field`;
  }
  throw new InvalidInput(field, message);
}

