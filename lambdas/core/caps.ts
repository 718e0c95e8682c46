/**
 * Caps a deployment sets on the two knobs whose top values switch a protection off: a
 * `throttle.maxThreadsRunning` above what any server reaches never throttles, and a
 * `cleanup.batchRows` of a million deletes a million rows in one transaction (locks held for its
 * length, one huge binlog event for every replica to apply at once). The input schemas and the
 * live knobs are checked against them wherever they are validated.
 *
 * On AWS the stack's config sets them (`caps` in cdk.json, see infra/config.ts) and passes them to
 * the functions in their environment; locally the same defaults apply unless the environment
 * variable is set.
 */

export interface Cap {
  /** Where the stack's config sets it. */
  readonly config: string;
  /** The environment variable that carries it to the functions (and sets it locally). */
  readonly variable: string;
  readonly default: number;
  /** The highest value a deployment may set: the field's own bound. */
  readonly most: number;
}

/**
 * maxThreadsRunning 200: the default is 25, and Threads_running above a few times the server's
 * cores means it is saturated; 200 is above the vCPUs of the largest RDS instances (192), so a
 * threshold higher than that could never fire before the server is long overwhelmed.
 * batchRows 50,000: two and a half times the default of 20,000. Past it a batch's one transaction
 * (its row locks, its undo, one binlog event every replica applies at once) only grows, while what
 * a batch costs beside its rows is already small at 20,000.
 */
export const CAPS = {
  'throttle.maxThreadsRunning': { config: 'caps.throttle.maxThreadsRunning', variable: 'FERRY_CAP_THROTTLE_MAX_THREADS_RUNNING', default: 200, most: 100_000 },
  'cleanup.batchRows': { config: 'caps.cleanup.batchRows', variable: 'FERRY_CAP_CLEANUP_BATCH_ROWS', default: 50_000, most: 1_000_000 },
} as const satisfies Record<string, Cap>;

export type CappedField = keyof typeof CAPS;

/** The cap in force: the environment's (the stack sets it on AWS), else the default. A variable that is not a number in range is refused, naming it. */
export function capOf(field: CappedField, env: NodeJS.ProcessEnv = process.env): number {
  const cap = CAPS[field];
  const text = env[cap.variable];
  if (text === undefined || text === '') return cap.default;
  const value = /^[1-9][0-9]{0,9}$/.test(text) ? Number(text) : NaN;
  if (!(value <= cap.most)) throw new Error(`${cap.variable}=${text}: the cap on ${field} must be a whole number from 1 to ${cap.most} (default ${cap.default})`);
  return value;
}

/** Why `value` is over the field's cap (the cap, and where it is set), or null. */
export function overCap(field: CappedField, value: number, env: NodeJS.ProcessEnv = process.env): string | null {
  const most = capOf(field, env);
  if (value <= most) return null;
  const cap = CAPS[field];
  return `at most ${most}, the cap on ${field} (set by ${cap.config} in the stack's config on AWS, by ${cap.variable} locally; default ${cap.default})`;
}

/** The environment that carries a deployment's caps to its functions. */
export function capVariables(caps: { readonly throttle: { readonly maxThreadsRunning: number }; readonly cleanup: { readonly batchRows: number } }): Record<string, string> {
  return {
    [CAPS['throttle.maxThreadsRunning'].variable]: String(caps.throttle.maxThreadsRunning),
    [CAPS['cleanup.batchRows'].variable]: String(caps.cleanup.batchRows),
  };
}
