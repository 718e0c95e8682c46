import './polyfill.ts';
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { ExecutionAbortedError, ExecutionError, StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { LocalApprovalStore } from '../../lambdas/adapters/approvals.ts';
import { type ApprovalRequest } from '../../lambdas/core/ports/approvals.ts';
import type { Progress, TaskDeps } from '../../lambdas/core/ports/task-deps.ts';
import { NanoConnector } from '../../lambdas/adapters/couch.ts';
import { FileFlagStore } from '../../lambdas/adapters/flags.ts';
import { Mysql2Connector } from '../../lambdas/adapters/mysql2.ts';
import { ApprovalRejected, FerryError, REFUSAL_ERRORS } from '../../lambdas/core/errors.ts';
import { loadDefinition, MACHINES, type MachineSpec } from './machines.ts';
import { acquireRunLock } from './run-lock.ts';

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
}

export type LocalRunResult =
  | { readonly status: 'SUCCEEDED'; readonly output: unknown; readonly executions: number }
  | { readonly status: 'FAILED'; readonly error: string; readonly cause: string; readonly refused: boolean; readonly executions: number };

function failure(error: string, cause: string, executions: number): LocalRunResult {
  return { status: 'FAILED', error, cause, refused: REFUSAL_ERRORS.includes(error), executions };
}

/**
 * Runs a machine's ASL file with aws-local-stepfunctions, its Lambda tasks mapped to the handlers,
 * approvals given through the local token store, and continue-as-new done by starting the next
 * execution here, as Step Functions would.
 */
export async function runLocal(opts: LocalRunOptions): Promise<LocalRunResult> {
  const spec: MachineSpec | undefined = MACHINES[opts.machine];
  if (!spec) return failure('InvalidInput', `machine: unknown machine "${opts.machine}"; choose one of ${Object.keys(MACHINES).join(', ')}`, 0);
  let migrationId: string;
  try {
    migrationId = spec.parse(opts.input).migrationId;
  } catch (err) {
    if (err instanceof FerryError) return failure(err.name, err.message, 0);
    throw err;
  }
  await mkdir(opts.stateDir, { recursive: true });
  const lock = acquireRunLock(opts.stateDir, migrationId);
  if ('heldBy' in lock) {
    return failure('InvalidInput', `migrationId: another ferry local run of "${migrationId}" is running (pid ${lock.heldBy}) with state dir ${opts.stateDir}; wait for it, or stop it and run again to resume`, 0);
  }
  const say = opts.say ?? ((line: string) => process.stderr.write(line + '\n'));
  const sql = new Mysql2Connector(opts.env ?? process.env);
  const approvals = new LocalApprovalStore(opts.stateDir);
  const deps: TaskDeps = {
    // Local executions of this migration run only in this process (the run lock sees to it): an
    // owner recorded by any other local execution is no longer running.
    executions: { isRunning: async () => false },
    sql,
    couch: new NanoConnector(opts.env ?? process.env),
    flags: new FileFlagStore(opts.stateDir),
    budgetMillis: LOCAL_BUDGET_MILLIS,
    now: Date.now,
    report: opts.onProgress ?? (() => undefined),
  };
  const abort = new AbortController();
  opts.signal?.addEventListener('abort', () => abort.abort(opts.signal?.reason), { once: true });
  const machine = new StateMachine(loadDefinition(spec.name) as StateMachineDefinition, { validationOptions: { checkArn: false } });

  let input: unknown = opts.input;
  let executions = 0;
  // A decision given to an execution that then handed over (continue-as-new) stands for the next one.
  const approvedEarlier = new Map<string, { by: string; at: string }>();
  const rejectedEarlier = new Map<string, Error>();
  try {
    for (;;) {
      executions += 1;
      const executionId = `local:${spec.name}:${migrationId}:${randomUUID()}`;
      let continuation: unknown;
      // Ends every approval still waiting when this execution ends (a branch beside it failed or handed over).
      const finished = new AbortController();
      const approval = async (params: { Payload: ApprovalRequest }) => {
        const req = params.Payload;
        const rejected = rejectedEarlier.get(req.step);
        if (rejected) throw rejected;
        const earlier = approvedEarlier.get(req.step);
        if (earlier) {
          say(`approval ${req.step}: given by ${earlier.by} to the execution before this one`);
          return { approved: true, ...earlier };
        }
        await approvals.request(req);
        if (opts.approve === 'all' || opts.approve.includes(req.step)) {
          await approvals.decide(req.migrationId, req.step, { approved: true, by: 'ferry local --approve' });
          say(`approval ${req.step}: given by --approve`);
        } else {
          say(`waiting for approval "${req.step}" of ${req.migrationId}. To approve:\n  npx ferry approve ${req.migrationId} --step ${req.step}${opts.stateDir === '.ferry' ? '' : ` --state-dir ${opts.stateDir}`}\nTo reject:\n  npx ferry approve ${req.migrationId} --step ${req.step} --reject --reason "..."`);
        }
        let decision;
        try {
          decision = await approvals.waitFor(req, AbortSignal.any([abort.signal, finished.signal]));
        } catch (err) {
          if (err instanceof ApprovalRejected) rejectedEarlier.set(req.step, err);
          throw err;
        }
        approvedEarlier.set(req.step, { by: decision.by, at: decision.at });
        return { approved: true, by: decision.by, at: decision.at };
      };
      const taskHandlers: Record<string, (input: never) => Promise<unknown>> = {
        AwaitCutoverApproval: approval,
        AwaitCleanupApproval: approval,
        ContinueAsNew: async (params: { Input: unknown }) => {
          continuation = params.Input;
          return { ExecutionArn: `local:${spec.name}:${migrationId}:${randomUUID()}` };
        },
      };
      for (const [state, handler] of Object.entries(spec.handlers)) {
        taskHandlers[state] = (event: never) => handler(event, deps);
      }
      const execution = machine.run(input as never, {
        overrides: { taskResourceLocalHandlers: taskHandlers as never },
        context: {
          Execution: { Id: executionId, Name: executionId.split(':').pop(), Input: input as never, StartTime: new Date().toISOString() },
          StateMachine: { Id: `local:${spec.name}`, Name: spec.name },
          Task: { Token: `${executionId}:${randomUUID()}` },
        },
      });
      const onAbort = () => execution.abort();
      abort.signal.addEventListener('abort', onAbort, { once: true });
      try {
        const output = await execution.result;
        if (continuation === undefined) return { status: 'SUCCEEDED', output, executions };
        say(`continuing as a new execution (${executions + 1}) from the checkpoint`);
        input = continuation;
      } catch (err) {
        if (err instanceof ExecutionAbortedError) {
          return failure('ExecutionAborted', 'stopped before it finished; the checkpoint is kept: run the same command again to resume', executions);
        }
        if (err instanceof ExecutionError) {
          const cause = (err as Error & { cause?: { name?: string; message?: string } }).cause;
          return failure(cause?.name ?? 'ExecutionError', cause?.message ?? err.message, executions);
        }
        throw err;
      } finally {
        finished.abort();
        abort.signal.removeEventListener('abort', onAbort);
      }
    }
  } finally {
    await sql.closeAll();
    lock.release();
  }
}
