import type { MigrationClaims } from './claims.ts';
import type { CouchConnector } from './couch.ts';
import type { FlagStore } from './flags.ts';
import type { SqlConnector } from './sql.ts';
import type { StatusReports } from './status.ts';

/** What a progress line says; handlers report it after every unit of work. */
export interface Progress {
  readonly migrationId: string;
  readonly phase: string;
  /** Rows (or docs) done so far in this phase's unit, as a decimal string. */
  readonly done: string;
  /** Estimated total, as a decimal string, or null when unknown. */
  readonly total: string | null;
  /** What is counted: table rows or documents. */
  readonly unit?: 'rows' | 'docs';
  /** What the loop is doing now, in words. */
  readonly note?: string;
  /** Why the last check said "wait", or null when it did not. */
  readonly throttle: string | null;
  /** How long the state machine now waits because of that throttle. */
  readonly waitSeconds?: number;
  /** The live knobs in force (`ferry set`), by name, when any is set. */
  readonly knobs?: Readonly<Record<string, string>>;
  /** A finding to show whole, never skipped like a progress update may be (a pass's summary). */
  readonly notice?: boolean;
  /** Something the operator should know and act on (a knob ignored, and why). */
  readonly warning?: string;
}

/** Whether an execution (by id) is still running: Step Functions on AWS; locally the run lock answers instead. */
export interface ExecutionRegistry {
  isRunning(executionId: string): Promise<boolean>;
  /** Whether execution `from` really started `to` to continue it (its continue-as-new step did). */
  handedOver(from: string, to: string): Promise<boolean>;
  /** Words that let an operator find a running execution (locally: its process and state dir). */
  describe?(executionId: string): string;
}

/** The ports a task handler is given: on Lambda built from the environment, locally by the runner. */
export interface TaskDeps {
  readonly executions: ExecutionRegistry;
  readonly sql: SqlConnector;
  readonly couch: CouchConnector;
  readonly flags: FlagStore;
  /** The operator's live knobs (see knobs.ts), read before each chunk. */
  readonly knobs: FlagStore;
  /** Which input holds each migration id (see migration-claims.ts): Preflight claims it, the plan reads it. */
  readonly claims: MigrationClaims;
  /** Milliseconds one invocation may spend copying before it hands back to the state machine. */
  readonly budgetMillis: number;
  /**
   * Fires when the run is being stopped (an operator's Ctrl-C locally): every loop then ends at its
   * next chunk or page, as if its time budget were spent, with the checkpoint saved.
   */
  readonly stopping?: AbortSignal;
  readonly now: () => number;
  readonly report: (progress: Progress) => void;
  /** Where a task leaves what the approval page and `ferry status --aws` show (AWS only; see StatusReports). */
  readonly status?: StatusReports;
}
