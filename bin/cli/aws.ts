import { DescribeExecutionCommand, GetExecutionHistoryCommand, ListExecutionsCommand, ListStateMachinesCommand, SFNClient, StartExecutionCommand, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { AwsApprovals } from '../../lambdas/adapters/approvals-aws.ts';
import { MACHINES } from './machines.ts';

/** State machines are deployed as `ferry-<machine>`. */
export const stateMachineName = (machine: string) => `ferry-${machine}`;

export async function stateMachineArn(sfn: SFNClient, machine: string): Promise<string> {
  let nextToken: string | undefined;
  do {
    const page = await sfn.send(new ListStateMachinesCommand({ nextToken }));
    const hit = page.stateMachines?.find((s) => s.name === stateMachineName(machine));
    if (hit?.stateMachineArn) return hit.stateMachineArn;
    nextToken = page.nextToken;
  } while (nextToken);
  throw new Error(`no state machine ${stateMachineName(machine)} in this account and region: deploy the stack (npx cdk deploy) or check AWS_REGION`);
}

/** Execution names: the migration id, then the time, so `ferry status <migrationId>` finds them. */
export function executionName(migrationId: string, now = new Date()): string {
  return `${migrationId}-${now.toISOString().replace(/[:.]/g, '-')}`.slice(0, 80);
}

/** Starts an execution after validating the input here (a refusal writes nothing). */
export async function startExecution(sfn: SFNClient, machine: string, input: unknown): Promise<{ executionArn: string; name: string }> {
  const spec = MACHINES[machine];
  if (!spec) throw new Error(`unknown machine ${machine}`);
  const { migrationId } = spec.parse(input);
  const name = executionName(migrationId);
  const out = await sfn.send(new StartExecutionCommand({ stateMachineArn: await stateMachineArn(sfn, machine), name, input: JSON.stringify(input) }));
  return { executionArn: out.executionArn!, name };
}

interface LoopStateOutput {
  phase?: string;
  throttle?: string | null;
  progress?: unknown;
  waitSeconds?: number;
}

/** The newest execution of a migration, on any of the machines, running ones first. */
async function latestExecution(sfn: SFNClient, migrationId: string): Promise<string | null> {
  let best: { arn: string; start: number; running: boolean } | null = null;
  for (const machine of Object.keys(MACHINES)) {
    let arn: string;
    try {
      arn = await stateMachineArn(sfn, machine);
    } catch {
      continue;
    }
    const page = await sfn.send(new ListExecutionsCommand({ stateMachineArn: arn, maxResults: 100 }));
    for (const e of page.executions ?? []) {
      if (!e.name?.startsWith(`${migrationId}-`)) continue;
      const cand = { arn: e.executionArn!, start: e.startDate?.getTime() ?? 0, running: e.status === 'RUNNING' };
      if (!best || (cand.running && !best.running) || (cand.running === best.running && cand.start > best.start)) best = cand;
    }
  }
  return best?.arn ?? null;
}

/** Phase, progress and throttle reason from the newest task result, and any approval waiting. */
export async function executionStatus(sfn: SFNClient, approvals: AwsApprovals, idOrArn: string) {
  const arn = idOrArn.startsWith('arn:') ? idOrArn : await latestExecution(sfn, idOrArn);
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
  const migrationId = (JSON.parse(exec.input ?? '{}') as { migrationId?: string }).migrationId;
  const pending = migrationId ? (await approvals.pending()).filter((p) => p.migrationId === migrationId) : [];
  return {
    executionArn: arn,
    status: exec.status,
    startDate: exec.startDate?.toISOString(),
    migrationId,
    phase: last?.phase ?? null,
    progress: last?.progress ?? null,
    throttle: last?.throttle ?? null,
    pendingApprovals: pending.map((p) => ({ step: p.step, since: p.since?.toISOString(), approve: `npx ferry approve ${p.migrationId} --step ${p.step} --aws` })),
    ...(exec.status === 'FAILED' ? { error: exec.error, cause: exec.cause } : {}),
  };
}

/**
 * `ferry abandon <migrationId> --aws` for online-alter: stops every running execution of the
 * migration, then starts one that only takes back the triggers, the shadow and the capture log
 * (the state machine's AbandonRequested path). The input is the one the newest execution was
 * started with, unless one is given.
 */
export async function abandonExecution(sfn: SFNClient, migrationId: string, given?: unknown): Promise<{ stopped: string[]; executionArn: string; name: string }> {
  const machineArn = await stateMachineArn(sfn, 'online-alter');
  const mine: { arn: string; status?: string; start: number }[] = [];
  let nextToken: string | undefined;
  do {
    const page = await sfn.send(new ListExecutionsCommand({ stateMachineArn: machineArn, maxResults: 100, nextToken }));
    for (const e of page.executions ?? []) if (e.name?.startsWith(`${migrationId}-`)) mine.push({ arn: e.executionArn!, status: e.status, start: e.startDate?.getTime() ?? 0 });
    nextToken = page.nextToken;
  } while (nextToken);
  let input = given;
  if (input === undefined) {
    const newest = mine.sort((a, b) => b.start - a.start)[0];
    if (!newest) throw new Error(`no execution of migration ${migrationId} on ${stateMachineName('online-alter')}; give its input with --input FILE`);
    const started = JSON.parse((await sfn.send(new DescribeExecutionCommand({ executionArn: newest.arn }))).input ?? '{}') as { migration?: unknown };
    input = started.migration ?? started;
  }
  const { migrationId: id } = MACHINES['online-alter']!.parse(input);
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
