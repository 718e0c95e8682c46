import { PAUSED_FLAG } from '../adapters/flags.ts';
import type { TaskDeps } from '../adapters/deps.ts';
import type { SqlConnection } from '../adapters/sql.ts';
import { initialChunkRows, nextChunkRows, planChunk } from '../core/chunker.ts';
import { InvalidInput } from '../core/errors.ts';
import { maxId, type Id } from '../core/ids.ts';
import { identityOf, parseInput, tableCopyInputSchema, type TableCopyInput } from '../core/table-copy-input.ts';
import { CheckpointStore, type Checkpoint } from '../core/checkpoints.ts';
import { copyRange, nextExistingId, type CopyTables } from '../core/tables/copier.ts';
import { copiedColumns, inspectTable, type TableInfo } from '../core/tables/inspector.ts';
import { replicaLagSeconds, threadsRunning, throttleQueryValue } from '../core/tables/probes.ts';
import { decideThrottle, type ThrottleDecision } from '../core/throttler.ts';

export const MACHINE = 'table-copy';

/** Phases in order; the checkpoint says which one a migration is in. */
export const PHASES = ['prepare', 'copy', 'catch-up', 'verify', 'cutover-approval', 'cleanup-approval', 'cleanup', 'done'] as const;
export type Phase = (typeof PHASES)[number];

/** The durable state kept in `_ferry_checkpoints`. Ids are decimal strings. */
export interface TableCopyState {
  readonly startedAt: string;
  /** Source ids at the start: the initial copy covers [rangeMin, rangeMax]. */
  rangeMin: Id | null;
  rangeMax: Id | null;
  estimatedRows: string;
  /** Every source id up to and including this one is in the target. */
  copiedUpTo: Id | null;
  rowsCopied: string;
  chunkRows: number;
  autoIncrement: Id | null;
  /** When the catch-up last saw a new source row. */
  quietSince: string | null;
  verifiedUpTo: Id | null;
  rangesVerified: number;
  /** Source rows found equal in the target by verification, summed over ranges. */
  rowsVerified: string;
  rangesRepaired: number;
  cleanedUpTo: Id | null;
  rowsDeleted: string;
  throttledMillis: number;
  phaseStartedAt: Record<string, string>;
}

/** What every task returns into `$.state`: just enough for the ASL Choice and Wait states. */
export interface LoopState {
  readonly phase: Phase;
  readonly done: boolean;
  readonly waitSeconds: number;
  readonly throttle: string | null;
  readonly iterations: number;
  readonly continueAsNew: boolean;
  readonly progress: { readonly rowsCopied: string; readonly estimatedRows: string; readonly copiedUpTo: Id | null; readonly rowsDeleted: string };
}

export interface TaskEvent {
  readonly migration: unknown;
  readonly state?: { readonly iterations?: number } | null;
}

export interface Migration {
  readonly input: TableCopyInput;
  readonly deps: TaskDeps;
  readonly source: SqlConnection;
  readonly target: SqlConnection;
  readonly tables: CopyTables;
  readonly store: CheckpointStore<TableCopyState>;
  readonly checkpoint: Checkpoint<TableCopyState>;
  /** Mutable copy of the checkpoint's state; `save` writes it back. */
  readonly state: TableCopyState;
  phase: Phase;
  readonly iterations: number;
  readonly startedMillis: number;
}

export function parseTableCopyInput(raw: unknown): TableCopyInput {
  return parseInput(tableCopyInputSchema, raw);
}

export async function connectBoth(input: TableCopyInput, deps: TaskDeps): Promise<{ source: SqlConnection; target: SqlConnection }> {
  const source = await deps.sql.connect(input.source.connection);
  const target = input.target.connection === input.source.connection ? source : await deps.sql.connect(input.target.connection);
  return { source, target };
}

export function copyTables(input: TableCopyInput, source: SqlConnection, target: SqlConnection, sourceInfo: TableInfo): CopyTables {
  return {
    source,
    target,
    sourceTable: input.source,
    targetTable: input.target,
    idColumn: sourceInfo.primaryKey[0]!,
    columns: copiedColumns(sourceInfo),
  };
}

/** Opens a migration that Preflight has already checked and checkpointed. */
export async function openMigration(event: TaskEvent, deps: TaskDeps): Promise<Migration> {
  const startedMillis = deps.now();
  const input = parseTableCopyInput(event.migration);
  const { source, target } = await connectBoth(input, deps);
  const store = new CheckpointStore<TableCopyState>(target, input.target.database, MACHINE);
  const checkpoint = await store.load(input.migrationId, identityOf(input));
  if (!checkpoint) {
    throw new InvalidInput('migrationId', `no checkpoint for "${input.migrationId}" in ${input.target.database}; start the execution from the beginning so Preflight can check the tables`);
  }
  const sourceInfo = await inspectTable(source, input.source);
  if (!sourceInfo) throw new InvalidInput('source.table', `${input.source.database}.${input.source.table} no longer exists`);
  return {
    input,
    deps,
    source,
    target,
    tables: copyTables(input, source, target, sourceInfo),
    store,
    checkpoint,
    state: structuredClone(checkpoint.state),
    phase: checkpoint.phase as Phase,
    iterations: (event.state?.iterations ?? 0) + 1,
    startedMillis,
  };
}

export async function save(m: Migration, phase: Phase = m.phase): Promise<void> {
  if (phase !== m.phase) m.state.phaseStartedAt[phase] = new Date(m.deps.now()).toISOString();
  m.phase = phase;
  await m.store.save(m.input.migrationId, phase, m.state);
}

export function timeLeft(m: Migration): boolean {
  return m.deps.now() - m.startedMillis < m.deps.budgetMillis;
}

export function report(m: Migration, note: string, throttle: string | null = null): void {
  m.deps.report({
    migrationId: m.input.migrationId,
    phase: m.phase,
    done: m.phase === 'cleanup' ? m.state.rowsDeleted : m.state.rowsCopied,
    total: m.phase === 'cleanup' ? m.state.rowsCopied : m.state.estimatedRows,
    note,
    throttle,
  });
}

/** Reads every throttle signal the input asks for and decides. */
export async function checkThrottle(m: Migration): Promise<ThrottleDecision> {
  const t = m.input.throttle;
  const threads: Record<string, number> = { [m.source.name]: await threadsRunning(m.source) };
  if (m.target !== m.source) threads[m.target.name] = await threadsRunning(m.target);
  let lag: number | null | undefined;
  if (t.replica) lag = await replicaLagSeconds(await m.deps.sql.connect(t.replica.connection));
  const queryValue = t.query ? await throttleQueryValue(m.source, t.query) : undefined;
  const paused = (await m.deps.flags.get(m.input.migrationId, PAUSED_FLAG)) === 'true';
  return decideThrottle(
    { threadsRunning: threads, replicaLagSeconds: lag, throttleQueryValue: queryValue, paused },
    { maxThreadsRunning: t.maxThreadsRunning, maxReplicaLagSeconds: t.replica?.maxLagSeconds ?? 0, waitSeconds: t.waitSeconds },
  );
}

export type CopyOutcome = { kind: 'caught-up' } | { kind: 'budget' } | { kind: 'throttled'; reason: string; waitSeconds: number };

/**
 * Copies chunk after chunk of source ids in (copiedUpTo, upTo] until caught up, the time budget
 * is spent, or the throttle says wait. The checkpoint moves after every committed chunk.
 */
export async function copyUntil(m: Migration, upTo: Id, onRows?: (inserted: number) => void): Promise<CopyOutcome> {
  const s = m.state;
  const chunk = m.input.chunk;
  if (s.chunkRows <= 0) s.chunkRows = initialChunkRows(chunk);
  while (timeLeft(m)) {
    const decision = await checkThrottle(m);
    if (decision.throttled) return { kind: 'throttled', reason: decision.reason, waitSeconds: decision.waitSeconds };
    const first = await nextExistingId(m.source, m.input.source, m.tables.idColumn, s.copiedUpTo);
    const range = planChunk(first, s.chunkRows, upTo);
    if (!range) return { kind: 'caught-up' };
    const started = m.deps.now();
    const { inserted } = await copyRange(m.tables, range);
    const elapsed = m.deps.now() - started;
    s.copiedUpTo = s.copiedUpTo === null ? range.hi : maxId(s.copiedUpTo, range.hi);
    s.rowsCopied = (BigInt(s.rowsCopied) + BigInt(inserted)).toString();
    s.chunkRows = nextChunkRows(s.chunkRows, elapsed, chunk);
    onRows?.(inserted);
    await save(m);
    report(m, `copied ids ${range.lo}..${range.hi} (${inserted} rows in ${elapsed} ms)`);
  }
  return { kind: 'budget' };
}

/** The value a task hands back to the state machine. */
export function loopState(m: Migration, fields: { done: boolean; waitSeconds?: number; throttle?: string | null }): LoopState {
  const continueAsNew = !fields.done && m.iterations >= m.input.execution.maxLoopIterations;
  return {
    phase: m.phase,
    done: fields.done,
    waitSeconds: fields.waitSeconds ?? 0,
    throttle: fields.throttle ?? null,
    iterations: m.iterations,
    continueAsNew,
    progress: { rowsCopied: m.state.rowsCopied, estimatedRows: m.state.estimatedRows, copiedUpTo: m.state.copiedUpTo, rowsDeleted: m.state.rowsDeleted },
  };
}

/** Turns a copy outcome into the task's answer, counting time spent throttled. */
export async function outcomeState(m: Migration, outcome: CopyOutcome): Promise<LoopState> {
  if (outcome.kind === 'throttled') {
    m.state.throttledMillis += outcome.waitSeconds * 1000;
    await save(m);
    report(m, 'throttled', outcome.reason);
    return loopState(m, { done: false, waitSeconds: outcome.waitSeconds, throttle: outcome.reason });
  }
  return loopState(m, { done: false });
}
