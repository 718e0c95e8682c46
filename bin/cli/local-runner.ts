import './polyfill.ts';
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { ExecutionAbortedError, ExecutionError, StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { LocalApprovalStore } from '../../lambdas/adapters/approvals.ts';
import { NanoConnector } from '../../lambdas/adapters/couch.ts';
import { FileMigrationClaims } from '../../lambdas/adapters/claims.ts';
import { FileFlagStore } from '../../lambdas/adapters/flags.ts';
import { Mysql2Connector } from '../../lambdas/adapters/mysql2.ts';
import { ApprovalRejected, FerryError, REFUSAL_ERRORS } from '../../lambdas/core/errors.ts';
import type { ApprovalRequest } from '../../lambdas/core/ports/approvals.ts';
import type { Progress, TaskDeps } from '../../lambdas/core/ports/task-deps.ts';
import { loadDefinition, MACHINES, type Handler, type MachineSpec } from './machines.ts';
import { acquireRunLock } from './run-lock.ts';
import { processAlive } from '../../lambdas/adapters/processes.ts';

/** How long one local task invocation copies before handing back to the state machine. */
export const LOCAL_BUDGET_MILLIS = 10_000;

export interface LocalRunOptions {
  readonly machine: string;
  readonly input: unknown;
  readonly stateDir: string;
  /** Steps approved as they come (`--approve all` or a list); others wait for `ferry approve`. */
  readonly approve: 'all' | readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly onProgress?: (p: Progress) => void;
  readonly say?: (line: string) => void;
  readonly signal?: AbortSignal;
  /** Run the machine's abandon path (online-alter: take back triggers, shadow and capture log) instead of the migration. */
  readonly abandon?: boolean;
  /** The approval page serving this state dir, named in each approval prompt. */
  readonly pageUrl?: string;
}

/** Where a run keeps the input it was started with, so `ferry abandon <migrationId>` can find it. */
export function savedInputPath(stateDir: string, migrationId: string): string {
  return join(stateDir, 'inputs', `${migrationId}.json`);
}

/**
 * What a run would be billed for on AWS: state transitions (each state entered, in every
 * execution, nested ones included), Lambda invocations (task states run) and the time they ran.
 */
export interface RunUsage {
  transitions: number;
  invocations: number;
  /** Invocations by task state. */
  byTask: Record<string, number>;
  taskMillis: number;
  /** Most task invocations running at the same moment (a Map state's items run side by side). */
  peakConcurrent: number;
  running: number;
}

export type LocalRunResult =
  | { readonly status: 'SUCCEEDED'; readonly output: unknown; readonly executions: number; readonly usage?: RunUsage }
  | { readonly status: 'FAILED'; readonly error: string; readonly cause: string; readonly refused: boolean; readonly executions: number; readonly usage?: RunUsage };

function failure(error: string, cause: string, executions: number, usage?: RunUsage): LocalRunResult {
  return { status: 'FAILED', error, cause, refused: REFUSAL_ERRORS.includes(error), executions, ...(usage ? { usage } : {}) };
}

/** The machine and migration a run is for, or the refusal; nothing is written before it. */
function identify(opts: LocalRunOptions): { spec: MachineSpec; migrationId: string } | LocalRunResult {
  const spec = MACHINES[opts.machine];
  if (!spec) return failure('InvalidInput', `machine: unknown machine "${opts.machine}"; choose one of ${Object.keys(MACHINES).join(', ')}`, 0);
  try {
    return { spec, migrationId: spec.parse(opts.input).migrationId };
  } catch (err) {
    if (err instanceof FerryError) return failure(err.name, err.message, 0);
    throw err;
  }
}

/**
 * A local execution's id: `local:<machine>:<migrationId>:<host>:<pid>:<state dir, encoded>:<uuid>`, so a run of the same
 * migration from another state dir can tell that this one is alive, and say where it runs.
 */
export function localExecutionId(machine: string, migrationId: string, stateDir: string, name: string = randomUUID()): string {
  return `local:${machine}:${migrationId}:${hostname()}:${process.pid}:${encodeURIComponent(resolve(stateDir))}:${name}`;
}

function localExecutionOf(id: string): { host: string; pid: number; stateDir: string } | null {
  const parts = id.split(':');
  if (parts[0] !== 'local' || parts.length < 7) return null;
  const [host, pid, dir] = parts.slice(-4, -1);
  const n = Number(pid);
  return host && Number.isInteger(n) && n > 0 ? { host, pid: n, stateDir: decodeURIComponent(dir ?? '') } : null;
}

/** The hand-overs of one local run: which execution's continue-as-new started which. */
const localHandovers = new Set<string>();

/** The ports a task gets locally: MariaDB and CouchDB from the environment, flags, knobs and migration id claims in the state dir. */
function localDeps(opts: LocalRunOptions, sql: Mysql2Connector, stopping: AbortSignal): TaskDeps {
  return {
    stopping,
    // A local execution's id names its host, process and state dir (see localExecutionId): one of another process that is
    // still alive (a run of the same migration from another state dir) is running; this process's own hand over by continue-as-new.
    executions: {
      isRunning: async (id) => {
        const of = localExecutionOf(id);
        return of !== null && of.host === hostname() && of.pid !== process.pid && processAlive(of.pid);
      },
      handedOver: async (from, to) => localHandovers.has(`${from} → ${to}`),
      describe: (id) => {
        const of = localExecutionOf(id);
        return of ? `ferry local, pid ${of.pid} on ${of.host}, state dir ${of.stateDir}` : 'another ferry local run';
      },
    },
    sql,
    couch: new NanoConnector(opts.env ?? process.env),
    flags: new FileFlagStore(opts.stateDir),
    knobs: new FileFlagStore(opts.stateDir, 'knobs'),
    claims: new FileMigrationClaims(opts.stateDir),
    budgetMillis: LOCAL_BUDGET_MILLIS,
    now: Date.now,
    report: opts.onProgress ?? (() => undefined),
  };
}

/**
 * The approval Tasks' side locally: each request goes to the token store in the state dir and
 * waits for `ferry approve` (or is approved at once by `--approve`). A decision given to an
 * execution that then handed over (continue-as-new) stands for the next one.
 */
class LocalApprovals {
  private readonly approvedEarlier = new Map<string, { by: string; at: string }>();
  private readonly rejectedEarlier = new Map<string, Error>();
  constructor(
    private readonly store: LocalApprovalStore,
    private readonly opts: LocalRunOptions,
    private readonly say: (line: string) => void,
  ) {}

  /** The Task handler for one execution; its waits end when `stop` fires (the run aborted or the execution ended). */
  handler(stop: AbortSignal, beside?: (req: ApprovalRequest, until: AbortSignal) => Promise<void>) {
    return async (params: { Payload: ApprovalRequest }) => {
      const req = params.Payload;
      const rejected = this.rejectedEarlier.get(req.step);
      if (rejected) throw rejected;
      const earlier = this.approvedEarlier.get(req.step);
      if (earlier) {
        this.say(`approval ${req.step}: given by ${earlier.by} to the execution before this one`);
        return { approved: true, ...earlier };
      }
      await this.store.request(req);
      const given = this.opts.approve === 'all' || this.opts.approve.includes(req.step);
      if (given) {
        await this.store.decide(req.migrationId, req.step, { approved: true, by: 'ferry local --approve' });
        this.say(`approval ${req.step}: given by --approve`);
      } else {
        const dir = this.opts.stateDir === '.ferry' ? '' : ` --state-dir ${this.opts.stateDir}`;
        const page = this.opts.pageUrl ? `\nOr decide on the approval page: ${this.opts.pageUrl}` : '';
        this.say(`waiting for approval "${req.step}" of ${req.migrationId}. To approve:\n  npx ferry approve ${req.migrationId} --step ${req.step}${dir}\nTo reject:\n  npx ferry approve ${req.migrationId} --step ${req.step} --reject --reason "..."${page}`);
      }
      let decision;
      const decided = new AbortController();
      // What runs beside the wait ends before the decision is handed on, so nothing of it overlaps the next step.
      const besides = given ? undefined : beside?.(req, AbortSignal.any([stop, decided.signal]));
      try {
        decision = await this.store.waitFor(req, stop);
      } catch (err) {
        if (err instanceof ApprovalRejected) this.rejectedEarlier.set(req.step, err);
        throw err;
      } finally {
        decided.abort();
        await besides;
      }
      this.approvedEarlier.set(req.step, { by: decision.by, at: decision.at });
      return { approved: true, by: decision.by, at: decision.at };
    };
  }
}

/**
 * Retries wait as Step Functions would (the ASL's IntervalSeconds, BackoffRate, MaxDelaySeconds);
 * `FERRY_LOCAL_RETRY_MILLIS` makes every retry of every state wait that long instead.
 */
function retryOverrides(definition: unknown, env: NodeJS.ProcessEnv): Record<string, number> | undefined {
  const millis = Number(env.FERRY_LOCAL_RETRY_MILLIS);
  if (!env.FERRY_LOCAL_RETRY_MILLIS || !Number.isFinite(millis) || millis < 0) return undefined;
  return Object.fromEntries(allStates(definition).flatMap(([name, s]) => (s.Retry ? [[name, millis]] : [])));
}

type AslState = { readonly Resource?: string; readonly Retry?: unknown; readonly Branches?: readonly { States: Record<string, AslState> }[] };

/** Every state of a definition by name, those in Parallel branches included. */
function allStates(definition: unknown): [string, AslState][] {
  const visit = (states: Record<string, AslState>): [string, AslState][] =>
    Object.entries(states).flatMap(([name, s]) => [[name, s] as [string, AslState], ...(s.Branches ?? []).flatMap((b) => visit(b.States))]);
  return visit((definition as { States: Record<string, AslState> }).States);
}

/** Local seconds between two calls of the work beside an approval (it decides itself whether anything is due). */
const BESIDE_POLL_MILLIS = 2000;

/**
 * Runs the machine's work beside a pending approval (the re-verification beside the cut-over) for
 * the execution that waits, until `until` fires; its failures are said and tried again later, as
 * the scheduled function on AWS would.
 */
async function besideApproval(ctx: RunContext, input: unknown, executionId: string, req: ApprovalRequest, until: AbortSignal): Promise<void> {
  const handler = ctx.spec.besideApproval?.[req.step];
  if (!handler) return;
  const migration = input && typeof input === 'object' && 'migration' in input ? (input as { migration: unknown }).migration : input;
  const name = `${req.step === 'cutover' ? 'Reverify' : 'Beside'}`;
  while (!until.aborted) {
    const started = performance.now();
    ctx.usage.invocations += 1;
    ctx.usage.byTask[name] = (ctx.usage.byTask[name] ?? 0) + 1;
    try {
      await tracked(ctx, () => handler({ migration, execution: executionId } as Parameters<Handler>[0], ctx.deps));
    } catch (err) {
      ctx.say(`${name} (beside the ${req.step} approval) failed: ${(err as Error).name}: ${(err as Error).message}; tried again later`);
    } finally {
      ctx.usage.taskMillis += performance.now() - started;
    }
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        until.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, BESIDE_POLL_MILLIS);
      until.addEventListener('abort', done, { once: true });
    });
  }
}

/** A task the state machine asked for after the run was stopped: it does not run. */
class ExecutionStopped extends Error {
  override readonly name = 'ExecutionStopped';
  constructor(state: string) {
    super(`${state} was not run: the run is stopping`);
  }
}

type ExecutionOutcome = { readonly output: unknown } | { readonly continueWith: unknown; readonly as: string };

/** What every execution of one local run shares. */
interface RunContext {
  readonly machine: StateMachine;
  readonly spec: MachineSpec;
  readonly migrationId: string;
  readonly deps: TaskDeps;
  readonly approvals: LocalApprovals;
  readonly retries: Record<string, number> | undefined;
  readonly say: (line: string) => void;
  /** Task states that start an execution and wait for it (`states:startExecution.sync:2`). */
  readonly startsAndWaits: readonly string[];
  readonly usage: RunUsage;
  readonly stateDir: string;
  /** Called when Preflight has accepted the input. */
  readonly inputAccepted: () => Promise<void>;
  /** Task invocations under way (the work beside an approval included): a stopped run waits for them before it lets go of its sessions and its lock. */
  readonly inflight: Set<Promise<unknown>>;
}

/** Runs one task invocation, counted among those under way until it ends. */
function tracked<T>(ctx: RunContext, work: () => Promise<T>): Promise<T> {
  const p = work();
  const settled = p.then(() => undefined, () => undefined);
  ctx.inflight.add(settled);
  void settled.then(() => ctx.inflight.delete(settled));
  return p;
}

/**
 * A started execution's failure as Step Functions reports it to the Task that waited for it:
 * `States.TaskFailed`, its cause the execution's description with its error and cause.
 */
function startedExecutionFailed(err: unknown, executionArn: string): Error {
  const failed = executionFailure(err, 1);
  if (failed.status !== 'FAILED') return err as Error;
  const e = new Error(JSON.stringify({ executionArn, status: 'FAILED', error: failed.error, cause: failed.cause }));
  e.name = 'States.TaskFailed';
  return e;
}

/**
 * One execution of the ASL: task states mapped to the handlers, approvals to the local store,
 * `ContinueAsNew` recorded so the caller can start the next execution as Step Functions would, and
 * an execution a Task starts and waits for run here, nested, to its end.
 */
async function runExecution(ctx: RunContext, input: unknown, abort: AbortSignal, executionId = localExecutionId(ctx.spec.name, ctx.migrationId, ctx.stateDir)): Promise<ExecutionOutcome> {
  const { spec, migrationId } = ctx;
  let continuation: { input: unknown; as: string } | undefined;
  // Ends every approval and started execution still waiting when this execution ends (a branch beside it failed or handed over).
  const finished = new AbortController();
  const ended = AbortSignal.any([abort, finished.signal]);
  const approval = ctx.approvals.handler(ended, (req, until) => besideApproval(ctx, input, executionId, req, until));
  const taskHandlers: Record<string, (input: never) => Promise<unknown>> = {
    AwaitCutoverApproval: approval,
    AwaitCleanupApproval: approval,
    ContinueAsNew: async (params: { Input: unknown; Name?: string }) => {
      const next = localExecutionId(spec.name, migrationId, ctx.stateDir, params.Name);
      localHandovers.add(`${executionId} → ${next}`);
      continuation = { input: params.Input, as: next };
      return { ExecutionArn: next };
    },
  };
  for (const state of ctx.startsAndWaits) {
    taskHandlers[state] = async (params: { Input: unknown }) => {
      const executionArn = localExecutionId(spec.name, migrationId, ctx.stateDir);
      ctx.say(`${state}: started execution ${executionArn.split(':').pop()} and waits for it`);
      let outcome: ExecutionOutcome;
      try {
        outcome = await runExecution(ctx, params.Input, ended);
      } catch (err) {
        throw startedExecutionFailed(err, executionArn);
      }
      if (!('output' in outcome)) throw new Error(`${state}: the execution it started handed over, which a waited-for execution may not do`);
      return { ExecutionArn: executionArn, Status: 'SUCCEEDED', Output: outcome.output };
    };
  }
  for (const [state, handler] of Object.entries(spec.handlers)) {
    taskHandlers[state] = async (event: never) => {
      // A stopped execution may still retry a task that failed as it stopped: it is not run again.
      if (abort.aborted) throw new ExecutionStopped(state);
      const started = performance.now();
      ctx.usage.invocations += 1;
      ctx.usage.byTask[state] = (ctx.usage.byTask[state] ?? 0) + 1;
      ctx.usage.running += 1;
      ctx.usage.peakConcurrent = Math.max(ctx.usage.peakConcurrent, ctx.usage.running);
      try {
        const out = await tracked(ctx, () => handler(event, ctx.deps));
        // The input is kept (for ferry abandon) once Preflight has accepted it: a refused input writes nothing.
        if (state === 'Preflight') await ctx.inputAccepted();
        return out;
      } finally {
        ctx.usage.taskMillis += performance.now() - started;
        ctx.usage.running -= 1;
      }
    };
  }
  const execution = ctx.machine.run(input as never, {
    overrides: { taskResourceLocalHandlers: taskHandlers as never, retryIntervalOverrides: ctx.retries },
    context: {
      Execution: { Id: executionId, Name: executionId.split(':').pop(), Input: input as never, StartTime: new Date().toISOString() },
      StateMachine: { Id: `local:${spec.name}`, Name: spec.name },
      Task: { Token: `${executionId}:${randomUUID()}` },
    },
  });
  const events = (async () => {
    // Retries happen inside the execution: say why, as the console's execution history would.
    let failed: { Error: string; Cause: unknown } | undefined;
    for await (const event of execution.eventLogs) {
      if (event.type === 'StateEntered') ctx.usage.transitions += 1;
      if (event.type === 'StateFailed') failed = event;
      if (event.type === 'StateRetried' && failed) {
        const cause = failed.Cause instanceof Error ? failed.Cause.message : String((failed.Cause as { message?: string } | undefined)?.message ?? failed.Cause);
        ctx.say(`${event.state.name} failed (${failed.Error}: ${cause}); retry ${event.retry.attempt} of ${event.retry.retrier.MaxAttempts ?? 3}`);
      }
    }
  })().catch(() => undefined);
  const onAbort = () => execution.abort();
  abort.addEventListener('abort', onAbort, { once: true });
  try {
    const output = await execution.result;
    // The last events are counted before the outcome is (they follow the result by a tick or two).
    await Promise.race([events, new Promise((resolve) => setTimeout(resolve, 50))]);
    return continuation === undefined ? { output } : { continueWith: continuation.input, as: continuation.as };
  } finally {
    finished.abort();
    abort.removeEventListener('abort', onAbort);
  }
}

/** An execution's failure as the run's result; anything else is not the execution's and is thrown on. */
function executionFailure(err: unknown, executions: number, usage?: RunUsage): LocalRunResult {
  if (err instanceof ExecutionAbortedError) {
    return failure('ExecutionAborted', 'stopped before it finished; the checkpoint is kept: run the same command again to resume', executions, usage);
  }
  if (err instanceof ExecutionError) {
    const cause = (err as Error & { cause?: { name?: string; message?: string } }).cause;
    return failure(cause?.name ?? 'ExecutionError', cause?.message ?? err.message, executions, usage);
  }
  throw err;
}

/**
 * Runs a machine's ASL file with aws-local-stepfunctions, its Lambda tasks mapped to the handlers,
 * approvals given through the local token store, and continue-as-new done by starting the next
 * execution here, as Step Functions would.
 */
export async function runLocal(opts: LocalRunOptions): Promise<LocalRunResult> {
  const identified = identify(opts);
  if ('status' in identified) return identified;
  const { spec, migrationId } = identified;
  await mkdir(opts.stateDir, { recursive: true });
  const lock = acquireRunLock(opts.stateDir, migrationId);
  if ('heldBy' in lock) {
    return failure('InvalidInput', `migrationId: another ferry local run of "${migrationId}" is running (pid ${lock.heldBy}) with state dir ${opts.stateDir}; wait for it, or stop it and run again to resume`, 0);
  }
  const say = opts.say ?? ((line: string) => process.stderr.write(line + '\n'));
  const sql = new Mysql2Connector(opts.env ?? process.env);
  const abort = new AbortController();
  const deps = localDeps(opts, sql, abort.signal);
  const approvals = new LocalApprovals(new LocalApprovalStore(opts.stateDir), opts, say);
  opts.signal?.addEventListener('abort', () => abort.abort(opts.signal?.reason), { once: true });
  // A server that refuses the run's very first connection is a wrong name, URL or password, not a fault to wait out.
  for (const c of spec.connections(opts.input)) {
    try {
      if (c.kind === 'mysql') await sql.connect(c.name);
      else await deps.couch.database(c.name, '_users');
    } catch (err) {
      await sql.closeAll();
      lock.release();
      const e = err as Error;
      return failure('InvalidInput', `${c.field}: ${e.message.replace(/, then run again to resume\.$/, '.')}`, 0);
    }
  }
  const definition = loadDefinition(spec.name);
  const machine = new StateMachine(definition as StateMachineDefinition, { validationOptions: { checkArn: false } });
  const ctx: RunContext = {
    machine, spec, migrationId, deps, approvals, say,
    retries: retryOverrides(definition, opts.env ?? process.env),
    startsAndWaits: allStates(definition).flatMap(([name, s]) => (s.Resource === 'arn:aws:states:::states:startExecution.sync:2' ? [name] : [])),
    usage: { transitions: 0, invocations: 0, byTask: {}, taskMillis: 0, peakConcurrent: 0, running: 0 },
    inflight: new Set(),
    stateDir: opts.stateDir,
    inputAccepted: async () => {
      if (opts.abandon) return;
      await mkdir(join(opts.stateDir, 'inputs'), { recursive: true });
      await writeFile(savedInputPath(opts.stateDir, migrationId), JSON.stringify(opts.input, null, 2) + '\n');
    },
  };
  let input: unknown = opts.abandon ? { migration: opts.input, abandon: true } : opts.input;
  let next: string | undefined;
  try {
    for (let executions = 1; ; executions++) {
      let outcome: ExecutionOutcome;
      try {
        outcome = await runExecution(ctx, input, abort.signal, next);
      } catch (err) {
        return executionFailure(err, executions, ctx.usage);
      }
      if ('output' in outcome) return { status: 'SUCCEEDED', output: outcome.output, executions, usage: ctx.usage };
      say(`continuing as a new execution (${executions + 1}) from the checkpoint`);
      input = outcome.continueWith;
      next = outcome.as;
    }
  } finally {
    // A stopped execution no longer waits for its tasks: each ends at its next chunk (deps.stopping), and only then are
    // the sessions closed and the lock let go, so a new run never overlaps a task of this one.
    while (ctx.inflight.size) await Promise.all([...ctx.inflight]);
    if (abort.signal.aborted && spec.leftOnStop && !opts.abandon) {
      const left = await spec.leftOnStop(opts.input, deps).catch(() => null);
      const dir = opts.stateDir === '.ferry' ? '' : ` --state-dir ${opts.stateDir}`;
      if (left) say(`${left}. Run the same command again to resume, or take them back with: npx ferry abandon ${migrationId}${dir}`);
    }
    await sql.closeAll();
    lock.release();
  }
}
