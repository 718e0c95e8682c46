import type { OwnTrigger } from '../core/tables/own-triggers.ts';
import type { TaskDeps } from '../core/ports/task-deps.ts';
import type { Id } from '../core/ids.ts';
import type { KeyRange } from '../core/keys.ts';
import { alterIdentityOf, onlineAlterInputSchema, type OnlineAlterInput } from '../core/online-alter-input.ts';
import { parseInput } from '../core/input-parts.ts';
import { withKnobs } from '../core/knobs.ts';
import { openCopy, type CopySettings, type CopyState, type LoopState as GenericLoopState, type Migration, type TaskEvent } from '../core/tables/chunked-copy.ts';
import { columnMapping, shadowNames, type DdlLock } from '../core/tables/shadow.ts';
import type { ReverifyRecord } from '../core/tables/reverify-record.ts';

export const MACHINE = 'online-alter';

export const PHASES = ['prepare', 'copy', 'verify', 'cutover-approval', 'cleanup-approval', 'cleanup', 'done', 'revert', 'reverted'] as const;
export type Phase = (typeof PHASES)[number];

export interface OnlineAlterState extends CopyState {
  readonly startedAt: string;
  /** Ids present when the triggers began capturing changes: the copy covers [rangeMin, rangeMax]. */
  rangeMin: Id | null;
  rangeMax: Id | null;
  verifyUpTo: Id | null;
  verifiedUpTo: Id | null;
  rangesVerified: number;
  rowsVerified: string;
  rangesRepaired: number;
  /** Rows the triggers could not write to the shadow, written again before the cut-over. */
  rowsWrittenAgain?: number;
  swappedAt: string | null;
  swapAttempts: number;
  autoIncrementAtSwap: Id | null;
  /** The table's own triggers as the swap found them, recorded before it moves them, so a run stopped in the middle puts them back. */
  ownTriggers?: OwnTrigger[];
  /** The re-verification while the cut-over approval is pending (see reverify.ts). */
  reverify?: ReverifyRecord | null;
  /** A revert asked for instead of the cleanup (see revert.ts). */
  revert?: AlterRevert | null;
}

/** Where a revert stands: the original table compared with the altered one range by range, then swapped back. */
export interface AlterRevert {
  /** Who asked and why (the decision's cause). */
  readonly askedBy: string | null;
  readonly startedAt: string;
  /** The capture triggers from the altered table into the original were made (at this time). */
  captureSince: string | null;
  verifyUpTo: Id | null;
  verifiedUpTo: Id | null;
  rangesVerified: number;
  rowsVerified: string;
  rangesRepaired: number;
  /** Rows the original lacked or held otherwise, written from the altered table (repairs and the capture log). */
  rowsWrittenBack: number;
  /**
   * Ranges whose repair the original refused, looked at again once every range was compared: a
   * unique value the application moved from a row of a later range is still held there by the
   * original's old copy of that row until that range is repaired.
   */
  deferred?: KeyRange[];
  swappedBackAt: string | null;
  /**
   * The revert began from an open revert window: only the rows its log names are compared (a
   * batch of them counts as a range), not the whole table.
   */
  fromLog?: boolean;
}

export type LoopState = GenericLoopState<Phase>;
export type AlterMigration = Migration<OnlineAlterSettings, OnlineAlterState, Phase>;

export interface OnlineAlterSettings extends CopySettings {
  readonly alter: OnlineAlterInput;
}

export function parseOnlineAlterInput(raw: unknown): OnlineAlterInput {
  return parseInput(onlineAlterInputSchema, raw);
}

/** The table is the copy's source and its shadow the target, on the same connection. */
export function settingsOf(input: OnlineAlterInput): OnlineAlterSettings {
  const { shadow } = shadowNames(input.table);
  return {
    migrationId: input.migrationId,
    source: input.table,
    target: { connection: input.table.connection, ...shadow },
    chunk: input.chunk,
    throttle: input.throttle,
    execution: input.execution,
    alter: input,
  };
}

export function openAlter(event: TaskEvent, deps: TaskDeps): Promise<AlterMigration> {
  const input = parseOnlineAlterInput(event.migration);
  return openCopy<OnlineAlterSettings, OnlineAlterState, Phase>(MACHINE, settingsOf(input), alterIdentityOf(input), event, deps, {
    columns: (table, shadow) => columnMapping(table, shadow, input.alter),
    readLock: true,
    retune: (knobs) => {
      const tuned = withKnobs(onlineAlterInputSchema, input, knobs);
      return { ...tuned, input: settingsOf(tuned.input) };
    },
  });
}

/** How DDL on the live table waits for its lock: `cutover.lockWaitSeconds` at a time, `cutover.attempts` times, no more once the run is stopping. */
export function lockOf(input: OnlineAlterInput, deps?: Pick<TaskDeps, 'stopping'>): DdlLock {
  return { seconds: input.cutover.lockWaitSeconds, attempts: input.cutover.attempts, ...(deps?.stopping ? { stopping: deps.stopping } : {}) };
}
