import type { CheckpointStore } from '../checkpoints.ts';
import type { Id } from '../ids.ts';
import type { KeyRange } from '../keys.ts';

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
  /** The span's first key (see KeyRange; null: from the lowest), or the key just before it when `loExcluded`. */
  readonly lo: Id | null;
  readonly hi: Id;
  readonly loExcluded?: boolean;
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

/** What the re-verification says when the input turns it off (`reverify.everySeconds: 0`). */
export const REVERIFY_OFF = 'off: reverify.everySeconds is 0, so nothing is checked again while the approval waits; the verification above is all there is';

/**
 * "verified 12 minutes ago, 40 ranges, 0 differences"; with `everySeconds` (the input's
 * `reverify.everySeconds`) 0, that re-verification is off.
 */
export function describeReverify(r: ReverifyRecord | null | undefined, now: number, everySeconds?: number): string {
  if (everySeconds === 0) return REVERIFY_OFF;
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

/**
 * Starts a pass when none is under way and the last ended `everySeconds` ago (or never); false when
 * the next pass is not due yet.
 */
export function startPass(r: ReverifyRecord, now: number, everySeconds: number): boolean {
  if (r.cursor !== null) return true;
  if (r.last && now - Date.parse(r.last.endedAt) < everySeconds * 1000) return false;
  r.passStartedAt = new Date(now).toISOString();
  r.current = zeroReverifyCount();
  return true;
}

export function endPass(r: ReverifyRecord, now: number): void {
  r.last = { ...r.current, endedAt: new Date(now).toISOString() };
  r.cursor = null;
}

/**
 * What a look at the range starting at `lo` found: a difference (its words), or none (null). A
 * difference is kept (the first 100; past that only counted), with when it was first seen; one
 * gone is forgotten. True when the difference is new or its words changed: worth saying.
 */
export function noteLook(r: ReverifyRecord, range: KeyRange, detail: string | null, now: number): boolean {
  const same = (d: ReverifyDifference) => d.lo === range.lo && (d.loExcluded ?? false) === (range.loExcluded ?? false);
  const known = r.differences.find(same);
  r.differences = r.differences.filter((d) => !same(d));
  if (detail === null) return false;
  const at = known?.detail === detail ? known.foundAt : new Date(now).toISOString();
  if (r.differences.length < 100) r.differences.push({ lo: range.lo, hi: range.hi, ...(range.loExcluded ? { loExcluded: true } : {}), detail, foundAt: at });
  else r.current.unrecorded = (r.current.unrecorded ?? 0) + 1;
  return known?.detail !== detail;
}

/** Differing spans the record could not name, in the pass under way or the last one. */
export function unrecordedOf(r: ReverifyRecord | null | undefined): number {
  return Math.max(r?.current.unrecorded ?? 0, r?.last?.unrecorded ?? 0);
}

/** Writes the record into the checkpoint, only while the cut-over approval is still pending for `owner`; false when it no longer is. */
export function writeReverify(store: Pick<CheckpointStore<unknown>, 'setStateField'>, migrationId: string, r: ReverifyRecord, owner: string | null | undefined): Promise<boolean> {
  return store.setStateField(migrationId, 'reverify', r, { phase: 'cutover-approval', owner });
}
