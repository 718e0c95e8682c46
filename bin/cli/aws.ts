import { machineOfInput } from '../../lambdas/core/machine-inputs.ts';
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import type { PlanAnswer } from '../../lambdas/adapters/plan-aws.ts';

import { parseInput } from '../../lambdas/core/input-parts.ts';
import type { FlagStore } from '../../lambdas/core/ports/flags.ts';
import { INPUT_SCHEMAS, migrationInputOfExecution, tuneInput, type MachineName } from '../../lambdas/core/machine-inputs.ts';
import { DescribeExecutionCommand, GetExecutionHistoryCommand, ListExecutionsCommand, ListStateMachinesCommand, SFNClient, StartExecutionCommand, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { AwsApprovals } from '../../lambdas/adapters/approvals-aws.ts';
import { deployment, planFunctionName, stateMachineName, type Deployment } from '../../lambdas/core/deployment.ts';
import { MACHINES } from './machines.ts';

/** The deployment `--env` (or FERRY_ENV) names: `ferry` when none. */
export function chosenDeployment(env: string | undefined = process.env.FERRY_ENV): Deployment {
  return deployment(env);
}

export async function stateMachineArn(sfn: SFNClient, d: Deployment, machine: string): Promise<string> {
  const name = stateMachineName(d, machine);
  let nextToken: string | undefined;
  do {
    const page = await sfn.send(new ListStateMachinesCommand({ nextToken }));
    const hit = page.stateMachines?.find((s) => s.name === name);
    if (hit?.stateMachineArn) return hit.stateMachineArn;
    nextToken = page.nextToken;
  } while (nextToken);
  throw new Error(`no state machine ${name} in this account and region: deploy the stack (npx cdk deploy${d.env ? ` -c env=${d.env}` : ''}), or check AWS_REGION and --env`);
}

/** Execution names: the migration id, then the time, so they sort and read well in the console. */
export function executionName(migrationId: string, now = new Date()): string {
  return `${migrationId}-${now.toISOString().replace(/[:.]/g, '-')}`.slice(0, 80);
}

/** Starts an execution after validating the input here (a refusal writes nothing). */
export async function startExecution(sfn: SFNClient, d: Deployment, machine: string, input: unknown): Promise<{ executionArn: string; name: string }> {
  const spec = MACHINES[machine];
  if (!spec) throw new Error(`unknown machine ${machine}`);
  const { migrationId } = spec.parse(input);
  const name = executionName(migrationId);
  const out = await sfn.send(new StartExecutionCommand({ stateMachineArn: await stateMachineArn(sfn, d, machine), name, input: JSON.stringify(input) }));
  return { executionArn: out.executionArn!, name };
}

/** The migration an execution's input is for: an operator's input, or a continuation's `{migration}`. */
export function migrationIdOf(input: string | undefined): string | undefined {
  try {
    const parsed = JSON.parse(input ?? '{}') as { migrationId?: string; migration?: { migrationId?: string } };
    return parsed.migrationId ?? parsed.migration?.migrationId;
  } catch {
    return undefined;
  }
}

interface FoundExecution {
  readonly arn: string;
  readonly status?: string;
  readonly start: number;
}

/** Executions listed per machine, newest first; older ones are beyond what `status` looks at. */
const LISTED = 1000;
/** Of those not named after the migration, how many are opened to read their input. */
const DESCRIBED = 50;

/**
 * The executions of a migration on one machine, newest first: those named after it (`ferry start`),
 * and those whose input is for it (started from the console, continuations, top-off runs), found by
 * reading the input of every running execution and of the newest others.
 */
export async function executionsOf(sfn: SFNClient, machineArn: string, migrationId: string): Promise<FoundExecution[]> {
  const listed: { arn: string; name?: string; status?: string; start: number }[] = [];
  let nextToken: string | undefined;
  do {
    const page = await sfn.send(new ListExecutionsCommand({ stateMachineArn: machineArn, maxResults: 100, nextToken }));
    for (const e of page.executions ?? []) listed.push({ arn: e.executionArn!, name: e.name, status: e.status, start: e.startDate?.getTime() ?? 0 });
    nextToken = page.nextToken;
  } while (nextToken && listed.length < LISTED);
  listed.sort((a, b) => b.start - a.start);
  const mine: FoundExecution[] = [];
  let described = 0;
  for (const e of listed) {
    if (e.name?.startsWith(`${migrationId}-`)) {
      mine.push(e);
      continue;
    }
    if (e.status !== 'RUNNING' && described >= DESCRIBED) continue;
    described++;
    const d = await sfn.send(new DescribeExecutionCommand({ executionArn: e.arn }));
    if (migrationIdOf(d.input) === migrationId) mine.push(e);
  }
  return mine;
}

interface LoopStateOutput {
  phase?: string;
  throttle?: string | null;
  progress?: unknown;
  waitSeconds?: number;
}

/**
 * The execution that carries a migration now, on any of the machines: running ones first, then
 * the newest; one that handed over is followed to the execution it started, to the end of the chain.
 */
async function latestExecution(sfn: SFNClient, d: Deployment, migrationId: string): Promise<string | null> {
  let best: (FoundExecution & { running: boolean }) | null = null;
  for (const machine of Object.keys(MACHINES)) {
    let arn: string;
    try {
      arn = await stateMachineArn(sfn, d, machine);
    } catch {
      continue;
    }
    for (const e of await executionsOf(sfn, arn, migrationId)) {
      const cand = { ...e, running: e.status === 'RUNNING' };
      if (!best || (cand.running && !best.running) || (cand.running === best.running && cand.start > best.start)) best = cand;
    }
  }
  let arn = best?.arn ?? null;
  for (let hops = 0; arn && hops < 100; hops++) {
    const d = await sfn.send(new DescribeExecutionCommand({ executionArn: arn }));
    let next: string | undefined;
    try {
      next = (JSON.parse(d.output ?? '{}') as { continuedAs?: string }).continuedAs;
    } catch {
      next = undefined;
    }
    if (d.status !== 'SUCCEEDED' || !next) break;
    arn = next;
  }
  return arn;
}


/** The knobs set for a migration and what its tasks make of them with its input (see knobs.ts). */
async function knobsOf(knobs: FlagStore, migrationId: string, input: unknown): Promise<{ set: Record<string, string>; inForce: Readonly<Record<string, string>>; ignored: readonly string[] }> {
  const set = await knobs.list(migrationId);
  try {
    const tuned = tuneInput(input, set);
    return { set, inForce: tuned.inForce, ignored: tuned.ignored };
  } catch {
    return { set, inForce: {}, ignored: Object.keys(set).map((k) => `${k}: the execution's input does not parse, so no knob applies`) };
  }
}

/** The scheduled function's last words beside a pending approval, if any: the re-verification (cut-over), or the old home's lag (cleanup). */
async function statusReport(ssm: SSMClient, d: Deployment, migrationId: string, kind: 'reverify' | 'lag'): Promise<unknown> {
  try {
    const out = await ssm.send(new GetParameterCommand({ Name: `${d.ssmRoot}/${migrationId}/status/${kind}` }));
    if (!out.Parameter?.Value) return null;
    try {
      return JSON.parse(out.Parameter.Value);
    } catch {
      return { unreadable: out.Parameter.Value.slice(0, 200) };
    }
  } catch (err) {
    if ((err as Error).name === 'ParameterNotFound') return null;
    throw err;
  }
}

/** Phase, progress and throttle reason from the newest task result, and any approval waiting. */
export async function executionStatus(sfn: SFNClient, approvals: AwsApprovals, d: Deployment, idOrArn: string, knobs?: FlagStore, ssm?: SSMClient) {
  const arn = idOrArn.startsWith('arn:') ? idOrArn : await latestExecution(sfn, d, idOrArn);
  if (!arn) throw new Error(`no execution of migration ${idOrArn} found; start one with ferry start`);
  const exec = await sfn.send(new DescribeExecutionCommand({ executionArn: arn }));
  const history = await sfn.send(new GetExecutionHistoryCommand({ executionArn: arn, reverseOrder: true, maxResults: 100 }));
  let last: LoopStateOutput | null = null;
  for (const e of history.events ?? []) {
    const output = e.taskSucceededEventDetails?.output ?? e.lambdaFunctionSucceededEventDetails?.output;
    if (!output) continue;
    try {
      const parsed = JSON.parse(output) as LoopStateOutput & { Payload?: LoopStateOutput };
      const state = parsed.Payload ?? parsed;
      if (state.phase) {
        last = state;
        break;
      }
    } catch {
      // not JSON: not one of ferry's results
    }
  }
  const migrationId = migrationIdOf(exec.input);
  const pending = migrationId ? (await approvals.pending()).filter((p) => p.migrationId === migrationId) : [];
  return {
    executionArn: arn,
    status: exec.status,
    startDate: exec.startDate?.toISOString(),
    migrationId,
    phase: last?.phase ?? null,
    progress: last?.progress ?? null,
    throttle: last?.throttle ?? null,
    ...(knobs && migrationId ? { knobs: await knobsOf(knobs, migrationId, migrationInputOfExecution(exec.input)) } : {}),
    ...(ssm && migrationId && pending.some((p) => p.step === 'cutover') ? { reverify: await statusReport(ssm, d, migrationId, 'reverify') } : {}),
    ...(ssm && migrationId && pending.some((p) => p.step === 'cleanup') ? { oldHome: await statusReport(ssm, d, migrationId, 'lag') } : {}),
    pendingApprovals: pending.map((p) => ({ step: p.step, since: p.since?.toISOString(), approve: `npx ferry approve ${p.migrationId} --step ${p.step} --aws${d.env ? ` --env ${d.env}` : ''}` })),
    ...(exec.status === 'FAILED' ? { error: exec.error, cause: exec.cause } : {}),
  };
}

/**
 * `ferry abandon <migrationId> --aws` for online-alter and table-copy: stops every running
 * execution of the migration, then starts one that only takes back what it put on the live table
 * (the state machine's AbandonRequested path: online-alter's triggers, shadow and capture log;
 * table-copy's revert window). The machine is the given input's, else the one that ran the
 * migration (online-alter looked at first); the input is the one its newest execution was started
 * with, unless one is given.
 */
export async function abandonExecution(sfn: SFNClient, d: Deployment, migrationId: string, given?: unknown): Promise<{ stopped: string[]; executionArn: string; name: string }> {
  const asked = given === undefined ? null : machineOfInput(given);
  if (asked === 'doctype-copy') throw new Error(`${migrationId} is a doctype-copy: it puts nothing on a live database to take back`);
  const machines: ('online-alter' | 'table-copy')[] = asked ? [asked] : ['online-alter', 'table-copy'];
  let machine = machines[0]!;
  let machineArn = '';
  let mine: Awaited<ReturnType<typeof executionsOf>> = [];
  for (const m of machines) {
    machine = m;
    machineArn = await stateMachineArn(sfn, d, m);
    mine = [...(await executionsOf(sfn, machineArn, migrationId))];
    if (mine.length) break;
  }
  let input = given;
  if (input === undefined) {
    const newest = mine.sort((a, b) => b.start - a.start)[0];
    if (!newest) throw new Error(`no execution of migration ${migrationId} on ${machines.map((m) => stateMachineName(d, m)).join(' or ')}; give its input with --input FILE`);
    const started = JSON.parse((await sfn.send(new DescribeExecutionCommand({ executionArn: newest.arn }))).input ?? '{}') as { migration?: unknown };
    input = started.migration ?? started;
  }
  const { migrationId: id } = MACHINES[machine]!.parse(input);
  if (id !== migrationId) throw new Error(`the input is for migration ${id}, not ${migrationId}`);
  const stopped: string[] = [];
  for (const e of mine.filter((x) => x.status === 'RUNNING')) {
    await sfn.send(new StopExecutionCommand({ executionArn: e.arn, error: 'Abandoned', cause: `abandoned by ferry abandon ${migrationId}` }));
    stopped.push(e.arn);
  }
  const name = executionName(`${migrationId}-abandon`);
  const out = await sfn.send(new StartExecutionCommand({ stateMachineArn: machineArn, name, input: JSON.stringify({ migration: input, abandon: true }) }));
  return { stopped, executionArn: out.executionArn!, name };
}

/**
 * `ferry plan <machine> --input FILE --aws`: the input checked here first, then the deployment's
 * plan function of that machine (`<deployment>-<machine>-plan`) runs every check where the
 * databases answer, writing nothing, and answers with the plan or Preflight's refusal.
 */
export async function planOnDeployment(lambda: LambdaClient, d: Deployment, machine: string, input: unknown): Promise<PlanAnswer> {
  const schema = INPUT_SCHEMAS[machine as MachineName];
  parseInput(schema, input);
  const FunctionName = planFunctionName(d, machine);
  const out = await lambda.send(new InvokeCommand({ FunctionName, Payload: new TextEncoder().encode(JSON.stringify({ migration: input })) }));
  const text = out.Payload ? new TextDecoder().decode(out.Payload) : '{}';
  if (out.FunctionError) {
    const e = JSON.parse(text) as { errorType?: string; errorMessage?: string };
    throw new Error(`${FunctionName} failed: ${e.errorType ?? out.FunctionError}: ${e.errorMessage ?? text}`);
  }
  return JSON.parse(text) as PlanAnswer;
}
