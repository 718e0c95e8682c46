import './cli/polyfill.ts';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { userInfo } from 'node:os';
import { LocalApprovalStore } from '../lambdas/adapters/approvals.ts';
import type { FlagStore } from '../lambdas/core/ports/flags.ts';
import type { Progress } from '../lambdas/core/ports/task-deps.ts';
import { FileFlagStore } from '../lambdas/adapters/flags.ts';
import { PAUSED_FLAG } from '../lambdas/core/ports/flags.ts';
import { InvalidInput } from '../lambdas/core/errors.ts';
import { APPROVAL_STEPS, checkApprovalName } from '../lambdas/core/input-parts.ts';
import { decideUrlParameter } from '../lambdas/core/deployment.ts';
import { localDecisionPorts, takeDecision } from '../lambdas/approvals/decide.ts';
import { KNOB_NAMES, parseKnobAssignments } from '../lambdas/core/knobs.ts';
import { machineOfInput, tuneInput, type MachineName } from '../lambdas/core/machine-inputs.ts';
import { runLocal, savedInputPath, type RunUsage } from './cli/local-runner.ts';
import { MACHINES } from './cli/machines.ts';
import { embeddedCouchIfNeeded } from './cli/embedded-couch.ts';
import { ProgressBar } from './cli/progress.ts';
import { alterStats, docStats, tableStats } from './cli/stats.ts';

const USAGE = `ferry: online migrations of huge tables as resumable state machines

  ferry local <machine> --input FILE [--approve all|STEP,...] [--state-dir DIR]
      run a migration locally, end to end (machines: ${Object.keys(MACHINES).join(', ')})
  ferry plan <machine> --input FILE [--json] [--state-dir DIR | --aws [--env ENV]]
      a no-op run: every Preflight check, then what would move, the disk it needs, the time and
      AWS cost it would take, the flags and approvals, and warnings; nothing is written
  ferry ui [--state-dir DIR] [--port N]
      the approval page on 127.0.0.1 (ferry local serves it too while it waits for an approval)
  ferry approve <migrationId> --step STEP [--reject --reason TEXT] [--execution ID] [--state-dir DIR | --aws [--env ENV]]
  ferry reject <migrationId> --step STEP --reason TEXT [--execution ID] [--state-dir DIR | --aws [--env ENV]]
      complete a pending approval (cutover, cleanup), locally or of an AWS execution; with
      --execution, only if that execution's request is the one pending
  ferry revert <migrationId> --reason TEXT [--execution ID] [--state-dir DIR | --aws [--env ENV]]
      answer the pending cleanup approval with a revert: what the application wrote in the new home
      is carried back to the old one, then the cut-over flags go back (table-copy: rows, doctype-copy:
      docs), or the original table is swapped back with the rows written since the swap (online-alter)
  ferry start <machine> --input FILE [--env ENV]
      start an execution on AWS (the deployed ferry-<machine>, or ferry-<ENV>-<machine>)
  ferry status <migrationId> [--state-dir DIR]
      the local run: whether it is going (and whose), its phase and progress, the knobs, what it
      holds on a live table (online-alter's triggers, since when; after the swap, how many rows the
      original trails by), the old database's lag (doctype-copy) and the approvals it waits for
  ferry status <migrationId|executionArn> --aws [--env ENV]
      an AWS execution's status, phase, progress, throttle reason, knobs in force, pending approvals
      and, beside a pending cut-over, the re-verification's last report
  ferry stats --input FILE          counts on both sides (rows and id bounds, or docs per type), and the checkpoint
  ferry abandon <migrationId> [--input FILE] [--state-dir DIR | --aws]
      online-alter: take back the triggers, the shadow and the capture log, leaving the table as it was;
      table-copy: take the revert window's triggers and log off the new table (all else stays)
  ferry flags <migrationId> [--state-dir DIR | --aws]
      the migration's flags (local file, or SSM Parameter Store)
  ferry pause|resume <migrationId> [--state-dir DIR | --aws]
      hold copying at the next chunk (the FERRY_PAUSED flag), or let it go on
  ferry set <migrationId> [NAME=VALUE...] [--state-dir DIR | --aws [--env ENV]]
      change a running migration's knobs, read before its next chunk (NAME= takes one back):
      ${KNOB_NAMES.join(', ')}

On AWS, --env ENV (or FERRY_ENV) picks the deployment of that environment (cdk deploy -c env=ENV).

Exit codes: 0 succeeded, 1 failed, 2 refused (bad input or usage; nothing written).`;

class UsageError extends Error {}

async function readInput(path: string | undefined): Promise<unknown> {
  if (!path) throw new UsageError('--input FILE is required');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`--input: cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--input: ${path} is not valid JSON: ${(err as Error).message}`);
  }
}

function parseApprove(value: string | undefined): 'all' | string[] {
  if (!value) return [];
  if (value === 'all') return 'all';
  const steps = value.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = steps.filter((s) => !(APPROVAL_STEPS as readonly string[]).includes(s));
  if (bad.length) throw new UsageError(`--approve: unknown step(s) ${bad.join(', ')}; use all, cutover, cleanup or a comma list`);
  return steps;
}

/** A run stopped by a signal exits as shells expect: 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM). */
function exitCodeFor(signal: NodeJS.Signals): number {
  return 128 + (signal === 'SIGINT' ? 2 : 15);
}

/** What the run would be billed for on AWS, and the memory it took here: the last line of `ferry local`. */
function usageLine(u: RunUsage): string {
  const peakMb = Math.round(process.resourceUsage().maxRSS / 1024);
  const byTask = Object.entries(u.byTask).map(([task, n]) => `${task} ${n}`).join(', ');
  return `usage: ${u.transitions} state transitions, ${u.invocations} task invocations (${byTask}), ${(u.taskMillis / 1000).toFixed(1)} task-seconds, at most ${u.peakConcurrent} at once, peak memory ${peakMb} MB`;
}

async function local(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { input: { type: 'string' }, approve: { type: 'string' }, 'state-dir': { type: 'string', default: '.ferry' } },
  });
  const machine = positionals[0];
  if (!machine || !MACHINES[machine]) throw new UsageError(`name a machine: ${Object.keys(MACHINES).join(', ')}`);
  const input = await readInput(values.input);
  const approve = parseApprove(values.approve);
  const bar = new ProgressBar();
  const abort = new AbortController();
  let stoppedBy: NodeJS.Signals | null = null;
  const stop = (signal: NodeJS.Signals) => {
    if (stoppedBy) {
      // A second Ctrl-C: at once. The server rolls back what the sessions had under way; the lock of a process that is gone is taken over.
      bar.say('stopped at once: the checkpoint is kept; run the same command again to resume');
      process.exit(exitCodeFor(signal));
    }
    stoppedBy = signal;
    bar.say('stopping at the end of the chunk under way (Ctrl-C again to stop at once); the checkpoint is kept; run the same command again to resume');
    abort.abort();
  };
  const env = { ...process.env };
  const embedded = MACHINES[machine]!.couch ? await embeddedCouchIfNeeded(env) : null;
  if (embedded) {
    env.COUCH_URL = embedded.url;
    bar.say(`no CouchDB answers at the default URL and COUCH_URL is not set: started an embedded in-memory PouchDB Server at ${embedded.url} for this run`);
  }
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // The approval page, for the steps a person approves; it also shows the run's live throttle reason.
  const live = new Map<string, Progress>();
  const page = approve === 'all' ? null : await (await import('./cli/ui.ts')).servePage({ stateDir: values['state-dir']!, env, live });
  if (page) bar.say(`approval page: ${page.url}`);
  let result;
  try {
    result = await runLocal({
      machine,
      input,
      stateDir: values['state-dir']!,
      approve,
      env,
      onProgress: (p) => {
        live.set(p.migrationId, p);
        bar.update(p);
      },
      say: (line) => bar.say(line),
      signal: abort.signal,
      ...(page ? { pageUrl: page.url } : {}),
    });
  } finally {
    const unlisten = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    };
    // A stopped run still hears a second Ctrl-C while the page and the embedded server close (the page waits up to 5 s
    // for a connection kept alive): it ends the process at once, with 130, as during the run.
    if (!stoppedBy) unlisten();
    await page?.close();
    await embedded?.stop();
    unlisten();
  }
  if (result.usage) bar.say(usageLine(result.usage));
  if (stoppedBy && result.status !== 'SUCCEEDED') {
    bar.say(`${machine}: stopped (${stoppedBy}); every task ended and its sessions are closed`);
    process.stdout.write(JSON.stringify({ status: 'STOPPED', signal: stoppedBy, error: result.error, cause: result.cause }) + '\n');
    return exitCodeFor(stoppedBy);
  }
  if (result.status === 'SUCCEEDED') {
    bar.say(`${machine}: SUCCEEDED${result.executions > 1 ? ` over ${result.executions} executions` : ''}`);
    process.stdout.write(JSON.stringify(result.output) + '\n');
    return 0;
  }
  bar.say(`${machine}: FAILED: ${result.error}: ${result.cause}`);
  process.stdout.write(JSON.stringify({ status: 'FAILED', error: result.error, cause: result.cause }) + '\n');
  return result.refused ? 2 : 1;
}

async function approve(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      step: { type: 'string' },
      reject: { type: 'boolean', default: false },
      revert: { type: 'boolean', default: false },
      reason: { type: 'string' },
      'state-dir': { type: 'string', default: '.ferry' },
      aws: { type: 'boolean', default: false },
      env: { type: 'string' },
      execution: { type: 'string' },
    },
  });
  const migrationId = positionals[0];
  const verb = values.revert ? 'revert' : 'approve';
  if (!migrationId) throw new UsageError(`name the migrationId to ${verb}`);
  if (values.revert) values.step ??= 'cleanup';
  if (!values.step) throw new UsageError('--step STEP is required (cutover or cleanup)');
  if (values.reject && !values.reason) throw new UsageError('--reject needs --reason TEXT, so the record says why');
  if (values.revert && !values.reason) throw new UsageError('ferry revert needs --reason TEXT, so the record says why');
  const decision: 'approve' | 'reject' | 'revert' = values.revert ? 'revert' : values.reject ? 'reject' : 'approve';
  const seen = values.execution ? { execution: values.execution } : undefined;
  if (values.aws) return approveOnAws(migrationId, values.step, { decision, ...(values.reason ? { reason: values.reason } : {}), ...seen }, values.env);
  const store = new LocalApprovalStore(values['state-dir']!);
  const by = `${userInfo().username} (ferry ${verb})`;
  checkApprovalName(migrationId, values.step);
  const asked = await store.requestOf(migrationId, values.step);
  if (asked && !asked.alive) {
    process.stderr.write(
      `no approval "${values.step}" of ${migrationId} is pending in ${values['state-dir']}: the run that asked for it (pid ${asked.record.pid}, ${asked.record.requestedAt}) is no longer running. ` +
        'A decision applies only to the request it answers: run the migration again, and decide when it asks.\n',
    );
    return 1;
  }
  const outcome = await takeDecision(
    { migrationId, step: values.step, approved: decision === 'approve', ...(decision === 'revert' ? { revert: true } : {}), ...(values.reason ? { reason: values.reason } : {}), ...(seen ? { seen } : {}) },
    { name: by },
    localDecisionPorts(store),
  );
  // Locally the line stays as it always was: what was decided, of which migration and step.
  return decisionExit(outcome.status === 'decided' ? { status: 'decided' } : outcome, migrationId, values.step, decision, `in ${values['state-dir']}`);
}

/** What `ferry approve` and `ferry revert` say of a decision's outcome, and their exit code. */
function decisionExit(outcome: { status: string; message?: string; execution?: string; by?: string; pending?: readonly { migrationId: string; step: string }[] }, migrationId: string, step: string, decision: 'approve' | 'reject' | 'revert', where: string): number {
  if (outcome.status === 'decided') {
    const done = decision === 'revert' ? 'revert asked' : decision === 'reject' ? 'rejected' : 'approved';
    process.stderr.write(`${done}: ${migrationId} step ${step}${outcome.execution ? ` (${outcome.execution})` : ''}${outcome.by ? `, by ${outcome.by}` : ''}\n`);
    return 0;
  }
  if (outcome.status === 'none') {
    const pending = (outcome.pending ?? []).map((p) => `${p.migrationId} --step ${p.step}`);
    process.stderr.write(`no approval "${step}" of ${migrationId} is pending ${where}` + (pending.length ? `; pending: ${pending.join('; ')}\n` : '; none is pending\n'));
    return 1;
  }
  if (outcome.status === 'changed') {
    process.stderr.write(`${outcome.message}; nothing was decided: look at the request pending now (ferry status ${migrationId}) before deciding\n`);
    return 1;
  }
  process.stderr.write(`${outcome.message ?? `nothing was decided (${outcome.status})`}\n`);
  return outcome.status === 'invalid' || outcome.status === 'refused' || outcome.status === 'forbidden' ? 2 : 1;
}

/**
 * `ferry approve --aws`: asks the deployment's decision endpoint, whose address the stack keeps in
 * SSM, signing the request with the caller's credentials. The endpoint's function checks who is
 * calling (AWS says it, not the shell), that they may decide, and the separation of duties.
 */
async function approveOnAws(migrationId: string, step: string, decision: { decision: 'approve' | 'reject' | 'revert'; reason?: string; execution?: string }, env: string | undefined): Promise<number> {
  const [{ GetParameterCommand, SSMClient }, { defaultProvider }, { chosenDeployment }, { askEndpoint, regionOfApi }] = await Promise.all([
    import('@aws-sdk/client-ssm'),
    import('@aws-sdk/credential-provider-node'),
    import('./cli/aws.ts'),
    import('./cli/decide-client.ts'),
  ]);
  checkApprovalName(migrationId, step);
  const d = chosenDeployment(env);
  const name = decideUrlParameter(d.ssmRoot);
  const address = (await new SSMClient({}).send(new GetParameterCommand({ Name: name }))).Parameter?.Value;
  if (!address) throw new Error(`${name} holds no address: deploy the stack (npx cdk deploy${d.env ? ` -c env=${d.env}` : ''})`);
  const url = new URL(address);
  const answer = await askEndpoint(url, { migrationId, step, ...decision }, { region: regionOfApi(url), credentials: defaultProvider() });
  return decisionExit(answer.status === 'decided' || answer.status === 'none' || answer.message ? answer : { ...answer, message: `the decision endpoint answered ${answer.httpStatus}` }, migrationId, step, decision.decision, 'on AWS');
}

/**
 * `ferry abandon <migrationId>`: takes back what an online-alter put on the live table (triggers
 * first, then the shadow and the capture log) and forgets its checkpoint, or a table-copy's revert
 * window on the new table (its triggers, then its log; see table-copy/abandon.ts). Locally with the input
 * the last run saved in the state dir (or --input), refused while that run is running; on AWS
 * (`--aws`) by stopping its executions and starting the machine's abandon path.
 */
async function abandon(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { input: { type: 'string' }, 'state-dir': { type: 'string', default: '.ferry' }, aws: { type: 'boolean', default: false }, env: { type: 'string' } },
  });
  const migrationId = positionals[0];
  if (!migrationId) throw new UsageError('name the migrationId to abandon');
  const stateDir = values['state-dir']!;
  let input: unknown = values.input ? await readInput(values.input) : undefined;
  if (values.aws) {
    const [{ abandonExecution, chosenDeployment }, { SFNClient }] = await Promise.all([import('./cli/aws.ts'), import('@aws-sdk/client-sfn')]);
    process.stdout.write(JSON.stringify(await abandonExecution(new SFNClient({}), chosenDeployment(values.env), migrationId, input)) + '\n');
    return 0;
  }
  input ??= await readSavedInput(stateDir, migrationId);
  if (input === undefined) throw new UsageError(`no run of ${migrationId} is recorded in ${stateDir}: give its input with --input FILE (or the --state-dir it ran with)`);
  const machine = machineOfInput(input);
  if (machine === 'doctype-copy') {
    throw new UsageError(`${migrationId} is a doctype-copy: it puts nothing on a live database to take back. Stop the run (Ctrl-C) instead; it resumes from its checkpoint`);
  }
  const bar = new ProgressBar();
  const result = await runLocal({ machine, input, stateDir, approve: [], abandon: true, onProgress: (p) => bar.update(p), say: (line) => bar.say(line) });
  if (result.status === 'FAILED') {
    bar.say(`abandon: FAILED: ${result.error}: ${result.cause}`);
    return result.refused ? 2 : 1;
  }
  const out = (result.output as { abandoned?: { abandoned?: boolean; note?: string } }).abandoned;
  bar.say(`abandon: ${out?.note ?? 'done'}`);
  process.stdout.write(JSON.stringify(out ?? {}) + '\n');
  return out?.abandoned === false ? 1 : 0;
}

async function flags(args: string[], set?: Record<string, string>): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { 'state-dir': { type: 'string', default: '.ferry' }, aws: { type: 'boolean', default: false }, env: { type: 'string' } },
  });
  const migrationId = positionals[0];
  if (!migrationId) throw new UsageError('name the migrationId');
  let store: FlagStore;
  if (values.aws) {
    const [{ SsmFlagStore }, { SSMClient }, { chosenDeployment }] = await Promise.all([import('../lambdas/adapters/flags-ssm.ts'), import('@aws-sdk/client-ssm'), import('./cli/aws.ts')]);
    store = new SsmFlagStore(new SSMClient({}), chosenDeployment(values.env).ssmRoot);
  } else {
    store = new FileFlagStore(values['state-dir']!);
  }
  if (set) await store.set(migrationId, set);
  process.stdout.write(JSON.stringify(await store.list(migrationId), null, 2) + '\n');
  return 0;
}

/** `ferry ui`: the approval page for a state dir, on 127.0.0.1, until Ctrl-C. */
async function ui(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { 'state-dir': { type: 'string', default: '.ferry' }, port: { type: 'string' } } });
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new UsageError('--port: a port number, 0 to 65535 (0: any free port)');
  const page = await (await import('./cli/ui.ts')).servePage({ stateDir: values['state-dir']!, env: process.env, port });
  process.stderr.write(`approval page for ${values['state-dir']}: ${page.url} (Ctrl-C to stop)\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await page.close();
  return 0;
}

/**
 * `ferry plan <machine> --input FILE`: Preflight's checks and what the run would do, writing
 * nothing. Exit 0 when it would run; 2, with Preflight's own message, when it would refuse.
 */
async function plan(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { input: { type: 'string' }, json: { type: 'boolean', default: false }, 'state-dir': { type: 'string', default: '.ferry' }, aws: { type: 'boolean', default: false }, env: { type: 'string' } },
  });
  const machine = positionals[0];
  if (!machine || !MACHINES[machine]) throw new UsageError(`name a machine: ${Object.keys(MACHINES).join(', ')}`);
  const input = await readInput(values.input);
  const { formatPlan } = await import('../lambdas/core/plan.ts');
  if (values.aws) {
    const [{ planOnDeployment, chosenDeployment }, { LambdaClient }] = await Promise.all([import('./cli/aws.ts'), import('@aws-sdk/client-lambda')]);
    const answer = await planOnDeployment(new LambdaClient({}), chosenDeployment(values.env), machine, input);
    if ('refused' in answer) {
      if (values.json) process.stdout.write(JSON.stringify({ machine, wouldRun: false, refused: answer.refused }, null, 2) + '\n');
      process.stderr.write(`ferry: ${answer.refused.message}\n`);
      return 2;
    }
    process.stdout.write((values.json ? JSON.stringify(answer.plan, null, 2) : formatPlan(answer.plan)) + '\n');
    return 0;
  }
  const { planLocal } = await import('./cli/plan.ts');
  try {
    const result = await planLocal(machine as MachineName, input, values['state-dir']!, process.env);
    process.stdout.write((values.json ? JSON.stringify(result, null, 2) : formatPlan(result)) + '\n');
    return 0;
  } catch (err) {
    const e = err as Error & { field?: string };
    if (e.name === 'InvalidInput' && values.json) process.stdout.write(JSON.stringify({ machine, wouldRun: false, refused: { field: e.field, message: e.message } }, null, 2) + '\n');
    throw err;
  }
}

/**
 * `ferry set <migrationId> NAME=VALUE…`: writes live knobs, each checked with its input field's
 * rule and, when the state dir holds the migration's input, with the machine's whole schema (a
 * knob that would not apply is refused, nothing written). Prints the knobs set afterwards.
 */
async function setKnobs(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { 'state-dir': { type: 'string', default: '.ferry' }, aws: { type: 'boolean', default: false }, env: { type: 'string' } },
  });
  const [migrationId, ...words] = positionals;
  if (!migrationId) throw new UsageError('name the migrationId whose knobs to set');
  const { set, unset } = words.length ? parseKnobAssignments(words) : { set: {}, unset: [] };
  let store: FlagStore;
  if (values.aws) {
    const [{ SsmFlagStore }, { SSMClient }, { chosenDeployment }] = await Promise.all([import('../lambdas/adapters/flags-ssm.ts'), import('@aws-sdk/client-ssm'), import('./cli/aws.ts')]);
    store = new SsmFlagStore(new SSMClient({}), chosenDeployment(values.env).ssmRoot, 'knobs');
  } else {
    store = new FileFlagStore(values['state-dir']!, 'knobs');
    const input = await readSavedInput(values['state-dir']!, migrationId);
    if (input !== undefined) {
      // Checked against the whole input: a knob set, or one left in force when another is taken back, must still go in.
      const before = await store.list(migrationId);
      const after: Record<string, string> = { ...before, ...set };
      for (const name of unset) delete after[name];
      const ignoredBefore = new Set(tuneInput(input, before).ignored);
      const refused = tuneInput(input, after).ignored.find((w) => !ignoredBefore.has(w));
      if (refused) throw new InvalidInput(refused.slice(0, refused.indexOf('=')), refused.slice(refused.indexOf(':') + 2) + (unset.length ? ` (with ${unset.join(', ')} taken back)` : ''));
    }
  }
  await store.set(migrationId, set);
  await store.unset(migrationId, unset);
  process.stdout.write(JSON.stringify(await store.list(migrationId), null, 2) + '\n');
  if (words.length) process.stderr.write(`${migrationId}: read before the next chunk (or page) of a running copy, verification or cleanup\n`);
  return 0;
}

/** The input `ferry local` saved for a migration in the state dir, if it ran there. */
async function readSavedInput(stateDir: string, migrationId: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(savedInputPath(stateDir, migrationId), 'utf8'));
  } catch {
    return undefined;
  }
}

async function stats(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { input: { type: 'string' } } });
  const input = await readInput(values.input);
  if (input && typeof input === 'object' && 'docTypes' in input) {
    process.stdout.write((await docStats(input)) + '\n');
    return 0;
  }
  const stats = input && typeof input === 'object' && 'alter' in input ? await alterStats(input) : await tableStats(input);
  process.stdout.write(JSON.stringify(stats, null, 2) + '\n');
  return 0;
}

async function start(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { input: { type: 'string' }, env: { type: 'string' } } });
  const machine = positionals[0];
  if (!machine || !MACHINES[machine]) throw new UsageError(`name a machine: ${Object.keys(MACHINES).join(', ')}`);
  const input = await readInput(values.input);
  const [{ startExecution, chosenDeployment }, { SFNClient }] = await Promise.all([import('./cli/aws.ts'), import('@aws-sdk/client-sfn')]);
  const started = await startExecution(new SFNClient({}), chosenDeployment(values.env), machine, input);
  process.stdout.write(JSON.stringify(started) + '\n');
  return 0;
}

async function status(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { env: { type: 'string' }, aws: { type: 'boolean', default: false }, 'state-dir': { type: 'string', default: '.ferry' } } });
  if (!positionals[0]) throw new UsageError('name a migrationId or an execution ARN');
  if (!values.aws && !values.env && !positionals[0].startsWith('arn:')) {
    // The local run of that migration from the state dir: whether it is going, its phase and progress, what it holds, what waits for a decision.
    const { localBackend } = await import('./cli/ui.ts');
    const view = (await localBackend(values['state-dir']!, process.env).migrations()).find((m) => m.migrationId === positionals[0]);
    if (!view) throw new UsageError(`no run of ${positionals[0]} is recorded in ${values['state-dir']} (give --state-dir, or --aws for a deployment's executions)`);
    const { pending, ...rest } = view;
    process.stdout.write(JSON.stringify({ ...rest, pending: pending.map((p) => ({ step: p.step, since: p.since })) }, null, 2) + '\n');
    return 0;
  }
  const [{ executionStatus, chosenDeployment }, { SFNClient }, { SSMClient }, { AwsApprovals }, { SsmFlagStore }] = await Promise.all([
    import('./cli/aws.ts'),
    import('@aws-sdk/client-sfn'),
    import('@aws-sdk/client-ssm'),
    import('../lambdas/adapters/approvals-aws.ts'),
    import('../lambdas/adapters/flags-ssm.ts'),
  ]);
  const d = chosenDeployment(values.env);
  const sfn = new SFNClient({});
  const ssm = new SSMClient({});
  const status = await executionStatus(sfn, new AwsApprovals(ssm, sfn, d.ssmRoot), d, positionals[0], new SsmFlagStore(ssm, d.ssmRoot, 'knobs'), ssm);
  process.stdout.write(JSON.stringify(status, null, 2) + '\n');
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'local':
        return await local(rest);
      case 'approve':
        return await approve(rest);
      case 'reject':
        return await approve([...rest, '--reject']);
      case 'revert':
        return await approve([...rest, '--revert']);
      case 'start':
        return await start(rest);
      case 'status':
        return await status(rest);
      case 'abandon':
        return await abandon(rest);
      case 'flags':
        return await flags(rest);
      case 'pause':
        return await flags(rest, { [PAUSED_FLAG]: 'true' });
      case 'resume':
        return await flags(rest, { [PAUSED_FLAG]: 'false' });
      case 'stats':
        return await stats(rest);
      case 'set':
        return await setKnobs(rest);
      case 'plan':
        return await plan(rest);
      case 'ui':
        return await ui(rest);
      case undefined:
      case 'help':
      case '--help':
        process.stdout.write(USAGE + '\n');
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    const e = err as Error & { code?: string; field?: string };
    if (err instanceof UsageError || e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      process.stderr.write(`ferry: ${e.message}\n\n${USAGE}\n`);
      return 2;
    }
    if (e.name === 'InvalidInput') {
      process.stderr.write(`ferry: ${e.message}\n`);
      return 2;
    }
    // AWS and database failures are reported as a line an operator can act on (the stack with FERRY_DEBUG=1).
    process.stderr.write(`ferry: ${command}: ${e.name}: ${e.message}\n`);
    if (process.env.FERRY_DEBUG) process.stderr.write(`${e.stack}\n`);
    return 1;
  }
}
