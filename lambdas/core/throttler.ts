/** What the throttle looks at before each chunk. Undefined means "not measured". */
export interface ThrottleReadings {
  /** `Threads_running` on each server the copy touches, by connection name. */
  readonly threadsRunning: Readonly<Record<string, number>>;
  /** Replica lag in seconds; null when the replica says replication is not running. */
  readonly replicaLagSeconds?: number | null;
  /** First column of the first row of `throttle.query`. */
  readonly throttleQueryValue?: string | null;
  /** The `FERRY_PAUSED` flag of this migration. */
  readonly paused: boolean;
}

export interface ThrottleSettings {
  readonly maxThreadsRunning: number;
  readonly maxReplicaLagSeconds: number;
  readonly waitSeconds: number;
}

export const DEFAULT_THROTTLE: ThrottleSettings = { maxThreadsRunning: 25, maxReplicaLagSeconds: 10, waitSeconds: 10 };

export type ThrottleDecision =
  | { readonly throttled: false }
  | { readonly throttled: true; readonly reason: string; readonly waitSeconds: number };

/** Decides whether to copy now. Every reason that holds is named, so an operator sees all of them. */
export function decideThrottle(r: ThrottleReadings, s: ThrottleSettings): ThrottleDecision {
  const reasons: string[] = [];
  if (r.paused) reasons.push('paused by the FERRY_PAUSED flag');
  for (const [connection, threads] of Object.entries(r.threadsRunning)) {
    if (threads > s.maxThreadsRunning) {
      reasons.push(`Threads_running ${threads} > ${s.maxThreadsRunning} on ${connection}`);
    }
  }
  if (r.replicaLagSeconds === null) reasons.push('replica is not replicating (Seconds_Behind_Master is NULL)');
  else if (r.replicaLagSeconds !== undefined && r.replicaLagSeconds > s.maxReplicaLagSeconds) {
    reasons.push(`replica lag ${r.replicaLagSeconds}s > ${s.maxReplicaLagSeconds}s`);
  }
  if (r.throttleQueryValue !== undefined && isPositive(r.throttleQueryValue)) {
    // Not the value: a query could compute it from anything its user reads.
    reasons.push('the throttle query says wait (its value is above 0)');
  }
  if (reasons.length === 0) return { throttled: false };
  return { throttled: true, reason: reasons.join('; '), waitSeconds: s.waitSeconds };
}

function isPositive(value: string | null): boolean {
  if (value === null) return false;
  const n = Number(value);
  return Number.isFinite(n) ? n > 0 : false;
}
