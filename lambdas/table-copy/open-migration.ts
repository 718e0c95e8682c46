import type { TaskDeps } from '../core/ports/task-deps.ts';
import type { Id } from '../core/ids.ts';
import { withKnobs } from '../core/knobs.ts';
import { DeliveryLedger, KeyLedger } from '../core/tables/ledger.ts';
import { keyOf } from '../core/tables/copier.ts';
import { PartitionStore } from '../core/tables/partitions.ts';
import type { KeySpanState } from '../core/tables/key-spans.ts';
import type { ReverifyRecord } from '../core/tables/reverify-record.ts';
import { identityOf, parseInput, tableCopyInputSchema, type TableCopyInput } from '../core/table-copy-input.ts';
import { openCopy, type LoopState as GenericLoopState, type Migration as GenericMigration, type TaskEvent } from '../core/tables/chunked-copy.ts';

export { checkThrottle, connectBoth, copyUntil, notice, outcomeState, report, save, timeLeft, loopState } from '../core/tables/chunked-copy.ts';
export type { CopyOutcome, TaskEvent } from '../core/tables/chunked-copy.ts';

export const MACHINE = 'table-copy';

/** Phases in order; the checkpoint says which one a migration is in. */
export const PHASES = ['prepare', 'copy', 'catch-up', 'verify', 'cutover-approval', 'sweep', 'cleanup-approval', 'cleanup', 'done', 'revert', 'reverted'] as const;
export type Phase = (typeof PHASES)[number];

/** The durable state kept in `_ferry_checkpoints`. Ids are decimal strings. */
export interface TableCopyState extends KeySpanState {
  readonly startedAt: string;
  /** Source ids at the start: the initial copy covers [rangeMin, rangeMax]. */
  rangeMin: Id | null;
  rangeMax: Id | null;
  autoIncrement: Id | null;
  /** The idOffset in force: the input's, or the one chosen from the source's insert rate. */
  idOffset: Id | null;
  /** Rows per hour the source received while the offset was chosen, when it was measured. */
  insertsPerHour: string | null;
  verifiedUpTo: Id | null;
  rangesVerified: number;
  /** Source rows found equal in the target by verification, summed over ranges. */
  rowsVerified: string;
  rangesRepaired: number;
  cleanedUpTo: Id | null;
  /** The re-verification while the cut-over approval is pending (see reverify.ts). */
  reverify?: ReverifyRecord | null;
  /** Noted just before the TRUNCATE: the source's AUTO_INCREMENT, put back after it (see cleanup.ts). */
  truncating?: { autoIncrement: Id } | null;
  /** Rows copied when the catch-up last looked at how many still arrive (see catch-up.ts). */
  arrivals?: { since: string; rowsCopied: string } | null;
  /** The cut-over flags' values before SetCutoverFlags first set them (null: not set), which a revert sets back. */
  flagsBefore?: Record<string, string | null> | null;
  /** A revert asked for instead of the cleanup (see revert.ts): who and why, when, and how far it carried the new table back. */
  revert?: CopyRevert | null;
  /**
   * The revert window (see copy-window.ts): when SetCopyFlags opened it, before the flags went on,
   * the id from which it logs inserts (null: none), and when the cleanup (or `ferry abandon`, closedBy) closed it; or why it was not opened (the server refused the triggers);
   * null or absent: none.
   */
  window?: { openedAt: string; insertsFrom?: Id | null; closedAt?: string | null; closedBy?: string } | { refused: string } | null;
}

/** A revert of a table-copy (see revert.ts); a field not there yet is at its start (a revert begun by an earlier ferry has none). */
export interface CopyRevert {
  readonly askedBy: string | null;
  readonly at: string;
  /** The last ledger span compared: its lowest id, or its number (a key ledger); null before the first. */
  spansAfter?: string | number | null;
  spansDone?: boolean;
  /** The new table's highest key when the spans were done: its rows above the ledger are carried up to it (null: none). */
  aboveUpTo?: string | null;
  /** The highest key above the ledger carried so far (null: the ledger's top). */
  aboveAfter?: string | null;
  /** The end of the piece above the ledger being written, noted before it is: a run stopped before recording it knows the old table's rows there are ferry's. */
  abovePiece?: string | null;
  /** Every row up to aboveUpTo is in the old table: the flags go back next. */
  carried?: boolean;
  spansCompared?: number;
  rowsCompared?: string;
  /** Rows of the old table written (inserted or overwritten) or deleted to match the new table. */
  rowsCarried?: number;
  /**
   * The spans compared are those the revert window's log names (see copy-window.ts), its entries up
   * to `logUpTo` (the log's highest when the revert began; null: it was empty). False or absent: every span.
   */
  fromLog?: boolean;
  logUpTo?: string | null;
  /** The highest id of the last span the log named that was carried (null: none yet). */
  logAfter?: string | null;
  /** Log entries read and forgotten, their spans carried. */
  logEntries?: number;
}

export type LoopState = GenericLoopState<Phase>;
export type Migration = GenericMigration<TableCopyInput, TableCopyState, Phase>;

export function parseTableCopyInput(raw: unknown): TableCopyInput {
  return parseInput(tableCopyInputSchema, raw);
}

/** Opens a table-copy that Preflight has already checked and checkpointed. */
export function openMigration(event: TaskEvent, deps: TaskDeps): Promise<Migration> {
  const input = parseTableCopyInput(event.migration);
  return openCopy<TableCopyInput, TableCopyState, Phase>(MACHINE, input, identityOf(input), event, deps, {
    retune: (knobs) => withKnobs(tableCopyInputSchema, input, knobs),
  });
}

/** The ledger of what was delivered, beside the checkpoint in the target database. */
export function ledgerOf(m: Migration): DeliveryLedger {
  return new DeliveryLedger(m.target, m.input.target.database, m.input.migrationId, { execution: m.state.owner });
}

/** The checkpoints of the initial copy's partitions, beside the migration's (see partitions.ts). */
export function partitionsOf(m: Migration): PartitionStore<TableCopyState> {
  return new PartitionStore<TableCopyState>(m.target, m.input.target.database, m.input.migrationId, byKey(m));
}

/** Whether the migration copies by another key than one integer id (see core/tables/key-spans.ts). */
export function byKey(m: Migration): boolean {
  return !keyOf(m.tables).isInteger;
}

/** The ledger of a migration copied by another key: spans of keys (see KeyLedger). */
export function keyLedgerOf(m: Migration): KeyLedger {
  return new KeyLedger(m.target, m.input.target.database, m.input.migrationId, { execution: m.state.owner });
}
