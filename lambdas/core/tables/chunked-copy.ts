import type { Progress, TaskDeps } from '../ports/task-deps.ts';
import { knobsNotRead, readKnobs, type Retune } from '../knobs.ts';
import { PAUSED_FLAG } from '../ports/flags.ts';
import type { SqlConnection } from '../ports/sql.ts';
import { CheckpointStore, type Checkpoint } from '../checkpoints.ts';
import { chunkSettings, initialChunkSpan, nextChunkSpan, planChunk, type ChunkInput } from '../chunker.ts';
import { InvalidInput } from '../errors.ts';
import { claimOwnership, refuseIfReplaced } from '../ownership.ts';
import { addId, compareIds, maxId, minId, type Id, type IdRange } from '../ids.ts';
import type { TableRef } from '../identifiers.ts';
import { decideThrottle, type ThrottleDecision } from '../throttler.ts';
import type { RowHashForm } from '../checksum.ts';
import { copyRange, idBounds, keyAt, keyOf, nextExistingId, type CopyTables } from './copier.ts';
import { copiedColumns, copyKeyColumns, copyKeyShape, integerKeys, pairedHashColumns, inspectTable, uniqueIndexOnAll, type CopyKey, type TableInfo } from './inspector.ts';
import type { KeyRange, KeyValue } from '../keys.ts';
import { loadCharset as loadDataCharset } from './load-data.ts';
import { replicaLagSeconds, threadsRunning, throttleQueryValue } from './probes.ts';

/** What a chunked copy between two tables needs from a migration's input, whichever machine it is. */
export interface CopySettings {
  readonly migrationId: string;
  readonly source: TableRef & { readonly connection: string };
  readonly target: TableRef & { readonly connection: string };
  readonly chunk: ChunkInput;
  readonly throttle: {
    readonly maxThreadsRunning: number;
    readonly replica?: { readonly connection: string; readonly maxLagSeconds: number };
    readonly query?: string;
    /** Where `query` runs; the source's connection when absent. */
    readonly connection?: string;
    readonly waitSeconds: number;
  };
  readonly execution: { readonly maxLoopIterations: number };
}

/** The part of a checkpoint's state the chunk loop reads and moves. Ids are decimal strings. */
export interface CopyState {
  estimatedRows: string;
  /** Every source id up to and including this one is in the target. */
  copiedUpTo: Id | null;
  rowsCopied: string;
  /** Id span of the next chunk (and of the next verified range), sized by time. */
  chunkSpan: number;
  rowsDeleted: string;
  throttledMillis: number;
  phaseStartedAt: Record<string, string>;
  /** The execution running this migration (see ownership.ts). */
  owner?: string | null;
  /** How rows are hashed in its ledger and comparisons (see checksum.ts); absent in a checkpoint written before it was recorded: MD5. */
  rowHash?: RowHashForm;
  /** The key it copies by, as Preflight chose it; absent (a checkpoint written before it was recorded): the source's row key. */
  copyKey?: CopyKey;
}

/** What every task returns into `$.state`: just enough for the ASL Choice and Wait states. */
export interface LoopState<P extends string = string> {
  readonly phase: P;
  readonly done: boolean;
  readonly waitSeconds: number;
  readonly throttle: string | null;
  readonly iterations: number;
  readonly continueAsNew: boolean;
  readonly progress: { readonly rowsCopied: string; readonly estimatedRows: string; readonly copiedUpTo: Id | null; readonly rowsDeleted: string };
}

export interface TaskEvent {
  readonly migration: unknown;
  readonly state?: { readonly iterations?: number; readonly handedOverBy?: string } | null;
  /** `$$.Execution.Id`, given to Preflight. */
  readonly execution?: string;
}

export interface Migration<I extends CopySettings, S extends CopyState, P extends string> {
  /** The input, with the live knobs in force put in (see followKnobs). */
  input: I;
  /** The knobs as last read (to see a change) and those in force. */
  readonly knobs: { seen: string; inForce: Readonly<Record<string, string>> };
  /** The input with knobs put in, validated by the machine's schema. */
  readonly retune: Retune<I>;
  readonly deps: TaskDeps;
  readonly source: SqlConnection;
  readonly target: SqlConnection;
  readonly tables: CopyTables;
  /** Where `save` writes the state: the migration's checkpoint, or a partition's (see partitions.ts). */
  readonly store: Pick<CheckpointStore<S>, 'save'>;
  readonly checkpoint: Checkpoint<S>;
  /** Mutable copy of the checkpoint's state; `save` writes it back. */
  readonly state: S;
  phase: P;
  readonly iterations: number;
  readonly startedMillis: number;
}

export async function connectBoth(input: CopySettings, deps: Pick<TaskDeps, 'sql'>): Promise<{ source: SqlConnection; target: SqlConnection }> {
  const source = await deps.sql.connect(input.source.connection);
  const target = input.target.connection === input.source.connection ? source : await deps.sql.connect(input.target.connection);
  return { source, target };
}

/** Which source column goes to which target column: the same names unless the machine says otherwise. */
export type ColumnPairs = (source: TableInfo, target: TableInfo | null) => { source: string[]; target: string[] };

const sameNames: ColumnPairs = (source) => ({ source: copiedColumns(source), target: copiedColumns(source) });

/** The key a migration copies by: as Preflight recorded it, or the source's first unique key on one integer column, as Preflight chooses it. */
export function copyKeyOf(state: Pick<CopyState, 'copyKey'> | null | undefined, sourceInfo: TableInfo): CopyKey {
  const key = state?.copyKey ?? integerKeys(sourceInfo)[0];
  if (!key) throw new TypeError(`${sourceInfo.ref.table} has no unique key on one integer column`);
  return key;
}

export function copyTables(input: CopySettings, source: SqlConnection, target: SqlConnection, sourceInfo: TableInfo, targetInfo: TableInfo | null, pairs: ColumnPairs, form: RowHashForm, key: CopyKey): CopyTables {
  const { source: columns, target: targetColumns } = pairs(sourceInfo, targetInfo);
  const hash = pairedHashColumns({ info: sourceInfo, names: columns }, { info: targetInfo ?? sourceInfo, names: targetColumns }, form);
  const loadCharset = targetInfo === null ? null : loadDataCharset(sourceInfo.columns, targetInfo.columns, columns, targetColumns);
  const targetKeyIndex = targetInfo === null ? null : uniqueIndexOnAll(targetInfo, copyKeyColumns(key));
  return { source, target, sourceTable: input.source, targetTable: input.target, idColumn: key.column, key: copyKeyShape(sourceInfo, key), keyIndex: key.index, targetKeyIndex, columns, targetColumns, hash, loadCharset };
}

/**
 * Opens a migration that Preflight has already checked and checkpointed: its connections, its
 * checkpoint (refused when made for another input), and the columns it copies.
 */
export async function openCopy<I extends CopySettings, S extends CopyState, P extends string>(
  machine: string,
  input: I,
  identity: Record<string, unknown>,
  event: TaskEvent,
  deps: TaskDeps,
  options: { columns?: ColumnPairs; readLock?: boolean; retune: Retune<I> },
): Promise<Migration<I, S, P>> {
  const startedMillis = deps.now();
  const { source, target } = await connectBoth(input, deps);
  const store = new CheckpointStore<S>(target, input.target.database, machine);
  const checkpoint = await store.load(input.migrationId, identity);
  if (!checkpoint) {
    throw new InvalidInput('migrationId', `no checkpoint for "${input.migrationId}" in ${input.target.database}; start the execution from the beginning so Preflight can check the tables`);
  }
  refuseIfReplaced(input.migrationId, checkpoint.state.owner, event.execution);
  const sourceInfo = await inspectTable(source, input.source);
  if (!sourceInfo) throw new InvalidInput('source.table', `${input.source.database}.${input.source.table} no longer exists`);
  const state = structuredClone(checkpoint.state);
  if (!(state.chunkSpan > 0)) state.chunkSpan = initialChunkSpan(chunkSettings(input.chunk));
  return {
    input,
    deps,
    source,
    target,
    knobs: knobsNotRead(),
    retune: options.retune,
    tables: { ...copyTables(input, source, target, sourceInfo, await inspectTable(target, input.target), options.columns ?? sameNames, checkpoint.state.rowHash ?? 'md5', copyKeyOf(checkpoint.state, sourceInfo)), readLock: options.readLock ?? false, ...(deps.stopping ? { stopping: deps.stopping } : {}) },
    store,
    checkpoint,
    state,
    phase: checkpoint.phase as P,
    iterations: (event.state?.iterations ?? 0) + 1,
    startedMillis,
  };
}

type AnyMigration = Migration<CopySettings, CopyState, string>;

/** The execution a task runs in, as Preflight is told it. */
export function executionOf(event: TaskEvent): string {
  return event.execution ?? 'unnamed execution';
}

/**
 * Preflight found a checkpoint: this execution takes the migration over (see ownership.ts) and
 * records itself as the owner, or is refused with MigrationBusy.
 */
export async function takeOver<S extends CopyState>(store: CheckpointStore<S>, checkpoint: Checkpoint<S>, event: TaskEvent, deps: TaskDeps): Promise<void> {
  const me = executionOf(event);
  await claimOwnership(checkpoint.migrationId, checkpoint.state.owner, me, event.state?.handedOverBy, deps.executions);
  if (checkpoint.state.owner !== me) await store.save(checkpoint.migrationId, checkpoint.phase, { ...checkpoint.state, owner: me }, checkpoint.state.owner);
}

/** What Preflight hands to RouteByPhase: the checkpoint's phase and progress. */
export function startState<P extends string>(phase: P, s: CopyState): LoopState<P> {
  return {
    phase, done: false, waitSeconds: 0, throttle: null, iterations: 0, continueAsNew: false,
    progress: { rowsCopied: s.rowsCopied, estimatedRows: s.estimatedRows, copiedUpTo: s.copiedUpTo, rowsDeleted: s.rowsDeleted },
  };
}

export async function save<P extends string>(m: Migration<CopySettings, CopyState, P>, phase: P = m.phase): Promise<void> {
  if (phase !== m.phase) m.state.phaseStartedAt[phase] = new Date(m.deps.now()).toISOString();
  m.phase = phase;
  await m.store.save(m.input.migrationId, phase, m.state);
}

/** Sizes the next chunk (or verified range) from how long the last one took. */
export function resizeChunk(m: AnyMigration, elapsedMillis: number): void {
  m.state.chunkSpan = nextChunkSpan(m.state.chunkSpan, elapsedMillis, chunkSettings(m.input.chunk));
}

export function timeLeft(m: AnyMigration): boolean {
  return !m.deps.stopping?.aborted && m.deps.now() - m.startedMillis < m.deps.budgetMillis;
}

/** Phases whose progress counts deletions rather than copies. */
const DELETING = new Set(['cleanup']);

function progressOf(m: AnyMigration): Progress {
  const deleting = DELETING.has(m.phase);
  return {
    migrationId: m.input.migrationId,
    phase: m.phase,
    done: deleting ? m.state.rowsDeleted : m.state.rowsCopied,
    // an estimate the count has passed is no longer a total
    total: deleting ? m.state.rowsCopied : maxId(m.state.estimatedRows, m.state.rowsCopied),
    throttle: null,
    ...(Object.keys(m.knobs.inForce).length ? { knobs: m.knobs.inForce } : {}),
  };
}

/** A line the operator must see (a finding, a pass's summary), never skipped like a progress update may be. */
export function notice(m: AnyMigration, note: string): void {
  m.deps.report({ ...progressOf(m), note, notice: true });
}

export function report(m: AnyMigration, note: string, throttle: string | null = null, waitSeconds?: number): void {
  m.deps.report({
    ...progressOf(m),
    note,
    throttle,
    waitSeconds,
  });
}

/**
 * Reads the migration's live knobs and, when they changed since the last read, puts them into its
 * input (the chunk span brought within the new bounds at once); a knob the schema refuses is
 * ignored with a warning. Called before every chunk, with the throttle.
 */
export async function followKnobs(m: AnyMigration): Promise<void> {
  const change = await readKnobs(m, m.deps.knobs, m.deps.now());
  if (!change) return;
  const { minSpan, maxSpan } = chunkSettings(m.input.chunk);
  m.state.chunkSpan = Math.min(Math.max(m.state.chunkSpan, minSpan), maxSpan);
  for (const warning of change.ignored) m.deps.report({ ...progressOf(m), note: warning, warning });
  if (change.inForce) report(m, change.inForce);
}

/** Reads every throttle signal the input asks for and decides, after taking in the live knobs. */
export async function checkThrottle(m: AnyMigration): Promise<ThrottleDecision> {
  await followKnobs(m);
  return throttleNow(m.input, m.source, m.target, m.deps);
}

/** What the throttle says now: every signal the settings ask for, on both servers, and the pause flag. */
export async function throttleNow(settings: Pick<CopySettings, 'migrationId' | 'throttle'>, source: SqlConnection, target: SqlConnection, deps: Pick<TaskDeps, 'sql' | 'flags'>): Promise<ThrottleDecision> {
  const t = settings.throttle;
  const threads: Record<string, number> = { [source.name]: await threadsRunning(source) };
  if (target !== source) threads[target.name] = await threadsRunning(target);
  let lag: number | null | undefined;
  if (t.replica) lag = await replicaLagSeconds(await deps.sql.connect(t.replica.connection));
  const queryValue = t.query ? await throttleQueryValue(t.connection ? await deps.sql.connect(t.connection) : source, t.query) : undefined;
  const paused = (await deps.flags.get(settings.migrationId, PAUSED_FLAG)) === 'true';
  return decideThrottle(
    { threadsRunning: threads, replicaLagSeconds: lag, throttleQueryValue: queryValue, paused },
    { maxThreadsRunning: t.maxThreadsRunning, maxReplicaLagSeconds: t.replica?.maxLagSeconds ?? 0, waitSeconds: t.waitSeconds },
  );
}

export type CopyOutcome = { kind: 'caught-up' } | { kind: 'budget' } | { kind: 'throttled'; reason: string; waitSeconds: number };

/**
 * Verifies the source's ids up to `hi`, from just after what it verified last, on connections of
 * its own, and records it in the migration's state (the copy loop saves the checkpoint).
 */
export type TrailingVerify = (hi: Id) => Promise<void>;

/** How many copied chunks the trailing verification may fall behind before the copy waits for it. */
export const VERIFY_BEHIND_CHUNKS = 4;

/**
 * Verification that chases the copy: `behind(hi)` says a chunk up to `hi` is copied; one
 * verification runs at a time, each up to the highest id copied when it starts, so a verification
 * slower than a chunk does not hold the copy. `settle` waits for all of it and throws its failure;
 * `keepUp` throws a failure already known, and waits when more than VERIFY_BEHIND_CHUNKS chunks are
 * unverified.
 */
function chaser(verify: TrailingVerify) {
  let running: Promise<void> | null = null;
  let wanted: Id | null = null;
  let waiting = 0;
  let failure: { err: unknown } | null = null;
  const settle = async () => {
    while (running) await running;
    if (failure) throw failure.err;
  };
  return {
    behind(hi: Id) {
      wanted = hi;
      waiting += 1;
      running ??= (async () => {
        try {
          while (wanted !== null && !failure) {
            const upTo = wanted;
            const chunks = waiting;
            wanted = null;
            await verify(upTo);
            waiting -= chunks;
          }
        } catch (err) {
          failure = { err };
        } finally {
          running = null;
        }
      })();
    },
    settle,
    async keepUp() {
      if (failure) throw failure.err;
      if (waiting > VERIFY_BEHIND_CHUNKS) await settle();
    },
  };
}

/**
 * Copies chunk after chunk of source ids in (copiedUpTo, upTo] until caught up, the time budget
 * is spent, or the throttle says wait. The checkpoint moves after every committed chunk. With
 * `verify`, the chunks copied are verified in order while the next ones copy (see chaser), on
 * sessions of their own. With `until` (a time in milliseconds), no chunk starts after it, and the
 * outcome is 'budget'.
 */
export async function copyUntil(m: AnyMigration, upTo: Id, options: { onRows?: (inserted: number) => void; verify?: TrailingVerify; until?: number } = {}): Promise<CopyOutcome> {
  const s = m.state;
  const verifying = options.verify ? chaser(options.verify) : null;
  const stop = async (outcome: CopyOutcome): Promise<CopyOutcome> => {
    await verifying?.settle();
    await save(m);
    return outcome;
  };
  try {
    while (timeLeft(m) && (options.until === undefined || m.deps.now() < options.until)) {
      const decision = await checkThrottle(m);
      if (decision.throttled) return await stop({ kind: 'throttled', reason: decision.reason, waitSeconds: decision.waitSeconds });
      const range = await nextChunk(m, upTo);
      if (!range) return await stop({ kind: 'caught-up' });
      const started = m.deps.now();
      const { inserted } = await copyRange(m.tables, range);
      const elapsed = m.deps.now() - started;
      s.copiedUpTo = s.copiedUpTo === null || !keyOf(m.tables).isInteger ? range.hi : maxId(s.copiedUpTo, range.hi);
      s.rowsCopied = (BigInt(s.rowsCopied) + BigInt(inserted)).toString();
      resizeChunk(m, elapsed);
      options.onRows?.(inserted);
      await verifying?.keepUp();
      verifying?.behind(range.hi);
      await save(m);
      report(m, `copied ${keyOf(m.tables).isInteger ? 'ids' : 'keys'} ${keyOf(m.tables).describe(range)} (${inserted} rows in ${elapsed} ms)`);
    }
    return await stop({ kind: 'budget' });
  } finally {
    // A failed copy still waits for the verification under way, so nothing runs on after the task.
    await verifying?.settle().catch(() => undefined);
  }
}

/**
 * The next chunk to copy, after `copiedUpTo` and up to `upTo`, or null when no source row is left
 * there. An integer key's starts at the next id present (one index probe, so a gap in the ids
 * costs nothing) and spans `chunkSpan` ids; any other key's starts just after `copiedUpTo` and
 * holds `chunkSpan` rows (a pass over that many entries of the index).
 */
async function nextChunk(m: AnyMigration, upTo: KeyValue): Promise<KeyRange | null> {
  const s = m.state;
  const key = keyOf(m.tables);
  if (key.isInteger) return planChunk(await nextExistingId(m.source, m.input.source, m.tables.idColumn, s.copiedUpTo), s.chunkSpan, upTo);
  const rest: KeyRange = { lo: s.copiedUpTo, loExcluded: true, hi: upTo };
  const hi = await keyAt(m.source, m.input.source, key, rest, s.chunkSpan - 1);
  if (hi !== null) return { ...rest, hi };
  return (await keyAt(m.source, m.input.source, key, rest, 0)) === null ? null : rest;
}

/** Whether ranges verified (or copied) up to `done` have reached `upTo` (keys of any other shape than one integer reach it exactly). */
export function reached(m: AnyMigration, done: KeyValue | null, upTo: KeyValue): boolean {
  if (done === null) return false;
  return keyOf(m.tables).isInteger ? compareIds(done, upTo) >= 0 : done === upTo;
}

/**
 * The next range of ids to verify (an integer key), contiguous with the last one so no id is
 * skipped: from the lowest id on either side (a stray target row below the source's is seen) or
 * just after `verifiedUpTo`, to `chunkSpan` ids past the next existing source id, never past
 * `upTo`. Null when no id is left.
 */
export async function nextVerifyRange(m: AnyMigration, verifiedUpTo: Id | null, upTo: Id): Promise<IdRange | null> {
  let lo: Id | null;
  if (verifiedUpTo === null) {
    const [s, t] = await Promise.all([idBounds(m.source, m.input.source, m.tables.idColumn), idBounds(m.target, m.input.target, m.tables.idColumn)]);
    lo = s.min === null ? t.min : t.min === null ? s.min : minId(s.min, t.min);
  } else {
    lo = addId(verifiedUpTo, 1);
  }
  if (lo === null) return null;
  const next = await nextExistingId(m.source, m.input.source, m.tables.idColumn, addId(lo, -1));
  return { lo, hi: next === null ? upTo : minId(addId(next, m.state.chunkSpan - 1), upTo) };
}

/**
 * The next range of keys to verify, of any key: an integer key's as nextVerifyRange gives it
 * (an id below `verifiedUpTo`'s successor, left by rows deleted since, is checked alone); any
 * other key's from the lowest key (null) or just after `verifiedUpTo`, over `chunkSpan` source
 * rows, never past `upTo`. Null when no key is left.
 */
export async function nextVerifyKeys(m: AnyMigration, verifiedUpTo: KeyValue | null, upTo: KeyValue): Promise<KeyRange | null> {
  const key = keyOf(m.tables);
  if (key.isInteger) {
    const next = await nextVerifyRange(m, verifiedUpTo, upTo);
    // Rows deleted since verification began can put the lowest id past upTo: check that id alone.
    return next === null || compareIds(next.hi, next.lo) >= 0 ? next : { lo: next.lo, hi: next.lo };
  }
  if (reached(m, verifiedUpTo, upTo)) return null;
  const rest: KeyRange = { lo: verifiedUpTo, loExcluded: true, hi: upTo };
  return { ...rest, hi: (await keyAt(m.source, m.input.source, key, rest, m.state.chunkSpan - 1)) ?? upTo };
}

/** The value a task hands back to the state machine. */
export function loopState<P extends string>(m: Migration<CopySettings, CopyState, P>, fields: { done: boolean; waitSeconds?: number; throttle?: string | null }): LoopState<P> {
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
export async function outcomeState<P extends string>(m: Migration<CopySettings, CopyState, P>, outcome: CopyOutcome): Promise<LoopState<P>> {
  if (outcome.kind === 'throttled') {
    m.state.throttledMillis += outcome.waitSeconds * 1000;
    await save(m);
    report(m, 'throttled', outcome.reason, outcome.waitSeconds);
    return loopState(m, { done: false, waitSeconds: outcome.waitSeconds, throttle: outcome.reason });
  }
  return loopState(m, { done: false });
}
