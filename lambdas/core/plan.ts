import type { MigrationClaims } from './ports/claims.ts';
import type { CouchConnector } from './ports/couch.ts';
import type { FlagStore } from './ports/flags.ts';
import type { SqlConnection, SqlConnector } from './ports/sql.ts';

/**
 * `ferry plan`: what a migration would do, from every check Preflight makes and a few reads,
 * with nothing written. Each machine fills a Plan (see lambdas/<machine>/plan.ts); this module
 * holds what they share: the AWS cost model, the time estimate and the text an operator reads.
 */

/** us-east-1 list prices (AWS pricing pages as published in 2024; check yours). */
export const AWS_PRICE = { perTransition: 0.025 / 1000, perInvocation: 0.2 / 1_000_000, perGbSecond: 0.0000166667, lambdaGb: 1 } as const;

/** Seconds a looping task works before it hands back to the state machine on AWS. */
export const AWS_BUDGET_SECONDS = 300;

export interface AwsUsage {
  readonly transitions: number;
  readonly invocations: number;
  readonly lambdaSeconds: number;
}

export function awsDollars(u: AwsUsage): number {
  return u.transitions * AWS_PRICE.perTransition + u.invocations * AWS_PRICE.perInvocation + u.lambdaSeconds * AWS_PRICE.lambdaGb * AWS_PRICE.perGbSecond;
}

/**
 * A run on AWS: the machine's fixed path (each task once, each Choice it passes), three transitions
 * (Task, Choice, Wait) per invocation of a loop that works `loopSeconds` in calls of at most 300 s
 * in each of `parallel` loops side by side, and three per poll while waiting for quiet.
 */
export function projectAws(p: { fixedTransitions: number; fixedInvocations: number; loopSeconds: number; parallel: number; polls: number }): AwsUsage & { dollars: number } {
  const loopCalls = p.parallel * Math.max(1, Math.ceil(p.loopSeconds / AWS_BUDGET_SECONDS));
  const usage = {
    transitions: p.fixedTransitions + 3 * loopCalls + 3 * p.polls,
    invocations: p.fixedInvocations + loopCalls + p.polls,
    // every task invocation costs at least about a second (connections, the checkpoint)
    lambdaSeconds: Math.round(p.loopSeconds * p.parallel + p.fixedInvocations + p.polls),
  };
  return { ...usage, dollars: Math.round(awsDollars(usage) * 100) / 100 };
}

export interface PlanSample {
  /** What was read: "rows" or "docs". */
  readonly unit: string;
  readonly count: number;
  readonly millis: number;
}

export interface Plan {
  readonly machine: string;
  readonly migrationId: string;
  /** Preflight's checks all passed: a run would start. */
  readonly wouldRun: true;
  /** A checkpoint of this input exists: the run resumes there. */
  readonly resumes: { readonly phase: string; readonly note: string } | null;
  /** What moves, in lines an operator reads. */
  readonly moves: readonly string[];
  /** The same, as fields (counts and ids as decimal strings). */
  readonly counts: Readonly<Record<string, unknown>>;
  readonly disk: { readonly needBytes: string | null; readonly freeBytes: string | null; readonly note: string };
  readonly estimate: { readonly sample: PlanSample | null; readonly seconds: number | null; readonly note: string };
  readonly aws: AwsUsage & { readonly dollars: number; readonly note: string };
  /** The flags each step sets, in order. */
  readonly flags: readonly { readonly step: string; readonly values: Readonly<Record<string, string>> }[];
  readonly approvals: readonly string[];
  readonly knobs: { readonly inForce: Readonly<Record<string, string>>; readonly ignored: readonly string[] };
  readonly warnings: readonly string[];
  /** What the application will feel while it runs, measured where ferry can (online-alter: on a scratch copy). */
  readonly application?: readonly string[];
}

/** Seconds to go through `units` at the rate the sample was read at, or null when nothing was timed. */
export function secondsAt(sample: PlanSample | null, units: bigint): number | null {
  if (!sample || sample.count === 0) return null;
  return (Number(units) * Math.max(sample.millis, 1)) / sample.count / 1000;
}

export function formatBytes(bytes: string | null): string {
  if (bytes === null) return 'unknown';
  const n = Number(bytes);
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function formatSeconds(seconds: number | null): string {
  if (seconds === null) return 'unknown';
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86_400).toFixed(1)} days`;
}

/** Whether the free space covers what the copy needs, as a warning (null: it does, or one is unknown). */
export function diskWarning(needBytes: string | null, freeBytes: string | null, what: string): string | null {
  if (needBytes === null || freeBytes === null) return null;
  if (BigInt(freeBytes) >= BigInt(needBytes)) return null;
  return `${what} needs about ${formatBytes(needBytes)} and ${formatBytes(freeBytes)} is free: free space before starting`;
}

const fmt = new Intl.NumberFormat('en-US');

/** A count written for people: 1,234,567. */
export function count(n: string | number | bigint): string {
  return fmt.format(typeof n === 'string' ? BigInt(n) : n);
}

/** The plan as an operator reads it. */
export function formatPlan(p: Plan): string {
  const lines = [`ferry plan: ${p.machine} "${p.migrationId}": every Preflight check passed; nothing was written`];
  if (p.resumes) lines.push(`resumes: at phase ${p.resumes.phase}: ${p.resumes.note}`);
  lines.push('moves:', ...p.moves.map((m) => `  ${m}`));
  lines.push(`disk: needs about ${formatBytes(p.disk.needBytes)}, free ${formatBytes(p.disk.freeBytes)}: ${p.disk.note}`);
  lines.push(`time: ${formatSeconds(p.estimate.seconds)}: ${p.estimate.note}`);
  lines.push(`on AWS: about ${count(p.aws.transitions)} state transitions, ${count(p.aws.invocations)} Lambda invocations, ${count(p.aws.lambdaSeconds)} Lambda-seconds, $${p.aws.dollars.toFixed(2)} (${p.aws.note})`);
  if (p.flags.length === 0) lines.push('flags: none');
  for (const f of p.flags) lines.push(`flags at ${f.step}: ${Object.entries(f.values).map(([k, v]) => `${k}=${v}`).join(', ') || '(none)'}`);
  lines.push(`approvals: ${p.approvals.join('; ')}`);
  if (Object.keys(p.knobs.inForce).length) lines.push(`knobs in force: ${Object.entries(p.knobs.inForce).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  for (const k of p.knobs.ignored) lines.push(`knob ignored: ${k}`);
  if (p.application?.length) lines.push('the application:', ...p.application.map((a) => `  ${a}`));
  if (p.warnings.length === 0) lines.push('warnings: none');
  for (const w of p.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n');
}

/** What a plan reads with: the task's ports (nothing it writes is used) and where to ask for free disk. */
export interface PlanDeps {
  readonly sql: SqlConnector;
  readonly couch: CouchConnector;
  readonly flags: FlagStore;
  /** Read only: an id another input holds is refused, as Preflight would. */
  readonly claims: Pick<MigrationClaims, 'ownerOf'>;
  /**
   * Free bytes where a server keeps its data, and how that was learnt, when the platform can tell
   * (the server's DISKS plugin is asked first); null: unknown.
   */
  readonly freeDiskBytes: (conn: SqlConnection) => Promise<{ readonly bytes: string; readonly where: string } | null>;
  readonly now: () => number;
}

/** The knobs the plan was made with (see knobs.ts). */
export interface PlanKnobs {
  readonly inForce: Readonly<Record<string, string>>;
  readonly ignored: readonly string[];
}
