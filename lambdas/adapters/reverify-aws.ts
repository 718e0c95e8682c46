import { DescribeExecutionCommand, ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { SSMClient } from '@aws-sdk/client-ssm';
import type { TaskDeps } from '../core/ports/task-deps.ts';
import { deploymentFromEnv } from '../core/deployment.ts';
import { migrationInputOfExecution } from '../core/machine-inputs.ts';
import { AwsApprovals } from './approvals-aws.ts';
import { awsDeps } from './aws.ts';
import { SsmStatusReports } from './status-ssm.ts';
import { lagReportText } from '../core/ports/status.ts';

export { lagReportText };

/** A machine's re-verification step, for the execution that waits (see lambdas/<machine>/reverify.ts). */
export type ReverifyStep = (event: { migration: unknown; execution: string }, deps: TaskDeps) => Promise<{ note: string; reverify?: { differences: readonly { detail: string }[] } | null }>;

/**
 * On AWS, on a schedule: the re-verification beside every pending cut-over approval of this
 * deployment's table-copy machine. The pending approvals are known by their parameters' names (no
 * token is read); the execution that waits, by the running executions' inputs. Each is re-verified
 * for that execution (see reverify.ts), one after another within the invocation's budget.
 */
export type ReverifyResult = { migrationId: string; execution: string; note: string; differences: string[] };

export async function reverifyPending(
  deps: TaskDeps,
  aws: { readonly approvals: { pending(): Promise<{ migrationId: string; step: string }[]> }; readonly sfn: SFNClient; readonly machineArn: string },
  run: ReverifyStep,
  onDone?: (result: ReverifyResult) => Promise<void>,
  step: 'cutover' | 'cleanup' = 'cutover',
): Promise<ReverifyResult[]> {
  const deadline = deps.now() + deps.budgetMillis;
  const waiting = new Set((await aws.approvals.pending()).filter((p) => p.step === step).map((p) => p.migrationId));
  const found: { migrationId: string; execution: string; migration: unknown }[] = [];
  let nextToken: string | undefined;
  while (waiting.size > 0) {
    const page = await aws.sfn.send(new ListExecutionsCommand({ stateMachineArn: aws.machineArn, statusFilter: 'RUNNING', nextToken }));
    for (const e of page.executions ?? []) {
      if (!e.executionArn) continue;
      const described = await aws.sfn.send(new DescribeExecutionCommand({ executionArn: e.executionArn }));
      const migration = migrationInputOfExecution(described.input);
      const migrationId = (migration as { migrationId?: unknown } | undefined)?.migrationId;
      if (typeof migrationId !== 'string') continue;
      if (!migrationId || !waiting.delete(migrationId)) continue;
      found.push({ migrationId, execution: e.executionArn, migration });
    }
    nextToken = page.nextToken;
    if (!nextToken) break;
  }
  // Each run starts with another migration (the schedule is every 5 minutes), so none waits behind the others for good.
  const first = found.length ? Math.floor(deps.now() / 300_000) % found.length : 0;
  const done: ReverifyResult[] = [];
  for (const f of [...found.slice(first), ...found.slice(0, first)]) {
    // One budget for the whole invocation, shared in turn: the Lambda's timeout is never reached.
    const left = deadline - deps.now();
    if (left < 10_000) break;
    let result: ReverifyResult;
    try {
      const out = await run({ migration: f.migration, execution: f.execution }, { ...deps, budgetMillis: left });
      result = { migrationId: f.migrationId, execution: f.execution, note: out.note, differences: (out.reverify?.differences ?? []).map((d) => d.detail) };
    } catch (err) {
      // One migration's failure (a lost connection, a replaced execution) does not stop the others'.
      result = { migrationId: f.migrationId, execution: f.execution, note: `${step === 'cutover' ? 're-verification' : "reading the old home's lag"} failed: ${(err as Error).name}: ${(err as Error).message}`, differences: [] };
    }
    done.push(result);
    await onDone?.(result);
  }
  return done;
}

/** A standard SSM String parameter holds at most 4 KB: the report keeps as many differences as fit, whole, and says how many it left out. */
export const REPORT_MAX_BYTES = 4096;

/** The re-verification's report for the page and `ferry status`, as JSON that always fits one parameter. */
export function reverifyReportText(at: string, note: string, differences: readonly string[]): string {
  const text = (kept: readonly string[]) => JSON.stringify({ at, note: note.slice(0, 1000), differences: kept.map((detail) => ({ detail: detail.slice(0, 600) })), left: differences.length - kept.length });
  let kept = differences.length;
  while (kept > 0 && Buffer.byteLength(text(differences.slice(0, kept))) > REPORT_MAX_BYTES) kept--;
  return text(differences.slice(0, kept));
}

/**
 * The Lambda handler of a machine's scheduled re-verification: every pending cut-over approval of
 * its state machine (named by FERRY_MACHINE_ARN) is re-verified for the execution that waits, and
 * each report is written, as it is done, where the approval page and `ferry status` read it
 * (`status/reverify`). Then, with what is left of the budget, `lag` says beside every pending
 * cleanup approval how far the old home trails the new one (`status/lag`), which a revert would
 * carry back.
 */
export function scheduledReverify(machine: string, run: ReverifyStep, lag?: ReverifyStep) {
  return async (_event: unknown, context?: { getRemainingTimeInMillis(): number }): Promise<ReverifyResult[]> => {
    const deps = awsDeps(machine, context);
    const sfn = new SFNClient({});
    const ssm = new SSMClient({});
    const root = deploymentFromEnv().ssmRoot;
    const machineArn = process.env.FERRY_MACHINE_ARN;
    if (!machineArn) throw new Error('FERRY_MACHINE_ARN is not set: the stack sets it on this function');
    const deadline = deps.now() + deps.budgetMillis;
    const aws = { approvals: new AwsApprovals(ssm, sfn, root), sfn, machineArn };
    const status = new SsmStatusReports(ssm, root);
    const done = await reverifyPending(deps, aws, run, (r) => status.put(r.migrationId, 'reverify', reverifyReportText(new Date().toISOString(), r.note, r.differences)));
    if (!lag) return done;
    const lags = await reverifyPending({ ...deps, budgetMillis: deadline - deps.now() }, aws, lag, (r) => status.put(r.migrationId, 'lag', lagReportText(new Date().toISOString(), r.note)), 'cleanup');
    return [...done, ...lags];
  };
}
