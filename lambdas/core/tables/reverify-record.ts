import type { Id } from '../ids.ts';

/**
 * The record of a re-verification beside a pending cut-over approval, kept in the checkpoint's
 * state (`reverify`) and written only while the approval is pending (CheckpointStore.setStateField).
 * Each machine checks its own way (lambdas/table-copy/reverify.ts, lambdas/online-alter/reverify.ts).
 */

export interface ReverifyCount {
  ranges: number;
  rows: string;
  lateRows: number;
  changedByApplication: number;
  repaired: number;
  /** Spans found different but not kept in `differences` (it holds the first 100). */
  unrecorded?: number;
}

export interface ReverifyDifference {
  readonly lo: Id;
  readonly hi: Id;
  readonly detail: string;
  readonly foundAt: string;
}

/** Kept in the checkpoint's state (`reverify`), written only while the approval is pending. */
export interface ReverifyRecord {
  /** The lowest id of the last span checked in the pass under way; null between passes. */
  cursor: Id | null;
  passStartedAt: string | null;
  current: ReverifyCount;
  /** The last complete pass. */
  last: (ReverifyCount & { readonly endedAt: string }) | null;
  /** Spans that differ (the first 100), each until a later look finds it equal. */
  differences: ReverifyDifference[];
}

export function zeroReverifyCount(): ReverifyCount {
  return { ranges: 0, rows: '0', lateRows: 0, changedByApplication: 0, repaired: 0 };
}

export function freshReverify(): ReverifyRecord {
  return { cursor: null, passStartedAt: null, current: zeroReverifyCount(), last: null, differences: [] };
}

/** "verified 12 minutes ago, 40 ranges, 0 differences" */
export function describeReverify(r: ReverifyRecord | null | undefined, now: number): string {
  if (!r?.last) return r?.cursor ? `re-verifying: ${r.current.ranges} ranges checked so far` : 'not re-verified yet';
  const minutes = Math.max(0, Math.round((now - Date.parse(r.last.endedAt)) / 60_000));
  const extra = [
    r.last.repaired ? `${r.last.repaired} repaired` : '',
    r.last.changedByApplication ? `${r.last.changedByApplication} changed by the application in the new table (kept)` : '',
    r.last.lateRows ? `${r.last.lateRows} late rows for the sweep` : '',
  ].filter(Boolean);
  const differences = r.differences.length + (r.last.unrecorded ?? 0);
  return `verified ${minutes} minute${minutes === 1 ? '' : 's'} ago, ${r.last.ranges} ranges, ${differences} difference${differences === 1 ? '' : 's'}${extra.length ? ` (${extra.join(', ')})` : ''}`;
}
