import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { aslPath } from '../../statemachines/asl.ts';
import { MACHINES } from '../../bin/cli/machines.ts';
import { PHASES as TABLE_COPY_PHASES } from '../../lambdas/table-copy/open-migration.ts';
import { PHASES as DOCTYPE_COPY_PHASES } from '../../lambdas/doctype-copy/open-doc-migration.ts';
import { PHASES as ONLINE_ALTER_PHASES } from '../../lambdas/online-alter/open-alter.ts';

const validator = createRequire(import.meta.url)('asl-validator') as (d: unknown, o: { checkArn: boolean; checkPaths: boolean }) => { isValid: boolean; errorsText: (sep?: string) => string };
type State = Record<string, unknown> & { Type: string };
type Definition = { StartAt: string; States: Record<string, State> };

/** Every state, nested ones (Parallel branches) included. */
function allStates(d: Definition): [string, State][] {
  return Object.entries(d.States).flatMap(([name, s]) => [[name, s] as [string, State], ...innerDefinitions(s).flatMap(allStates)]);
}

/** The state machines a Parallel state's branches or a Map state's items run. */
function innerDefinitions(s: State): Definition[] {
  return [...((s.Branches as Definition[] | undefined) ?? []), ...(s.ItemProcessor ? [s.ItemProcessor as Definition] : [])];
}

const PHASES: Record<string, readonly string[]> = { 'table-copy': TABLE_COPY_PHASES, 'doctype-copy': DOCTYPE_COPY_PHASES, 'online-alter': ONLINE_ALTER_PHASES };

describe.each(Object.keys(MACHINES))('statemachines/%s.asl.json', (machine) => {
  const asl = JSON.parse(readFileSync(aslPath(machine), 'utf8')) as Definition;
  const states = allStates(asl);
  const tasks = states.filter(([, s]) => s.Type === 'Task');

  it('is valid ASL with its ${…} placeholders', () => {
    const result = validator(asl, { checkArn: true, checkPaths: true });
    expect(result.errorsText('\n')).toBe('');
    expect(result.isValid).toBe(true);
  });

  it('gives every Task an explicit timeout (locally the default would be 60 s)', () => {
    for (const [name, s] of tasks) expect(s.TimeoutSeconds, name).toBeGreaterThan(0);
  });

  type Catcher = { ErrorEquals: string[]; Next: string };
  const stateNamed = (name: string) => states.find(([n]) => n === name)![1];
  /** The Parallel state whose branches hold `name`, if any. */
  const parallelAround = (name: string) => states.find(([, p]) => innerDefinitions(p).some((b) => name in b.States))?.[1];
  /** A state's own Catch, then that of the Parallel state around it. */
  const catchesOf = (name: string): Catcher[] => [...((stateNamed(name).Catch ?? []) as Catcher[]), ...((parallelAround(name)?.Catch ?? []) as Catcher[])];
  /** Where `error` raised in `name` leads; a Fail state inside a branch raises its own Error to the Parallel around it. */
  const leadsTo = (name: string, error: string): string => {
    const next = catchesOf(name).find((c) => c.ErrorEquals.includes(error) || c.ErrorEquals.includes('States.ALL'))!.Next;
    const target = stateNamed(next);
    return target.Type === 'Fail' && parallelAround(next) && typeof target.Error === 'string' ? leadsTo(next, target.Error) : next;
  };

  it('retries transient errors, and every error ends in a named failure', () => {
    const parallels = states.filter(([, s]) => s.Type === 'Parallel');
    for (const [name, s] of tasks) {
      const retry = s.Retry as { ErrorEquals: string[] }[];
      if (String(s.Resource).includes('FunctionArn')) expect(retry.flatMap((r) => r.ErrorEquals), name).toContain('TransientError');
      // a Task inside a Parallel branch is caught by the Parallel state around it too
      const caught = catchesOf(name).flatMap((c) => c.ErrorEquals);
      expect(caught, name).toContain('States.ALL');
    }
  });

  it('tells every Lambda Task which execution it runs for, so a replaced execution cannot write', () => {
    for (const [name, s] of tasks.filter(([, t]) => /FunctionArn/.test(String(t.Resource)))) {
      // the top-off run during the cut-over acts for the execution that started it and waits for it
      // a partition's item carries it from the Map's ItemSelector
      expect((s.Parameters as Record<string, string>)['execution.$'], name).toBe(name === 'TopOffForParent' ? '$.topOffFor' : name === 'CopyPartition' ? '$.execution' : '$$.Execution.Id');
    }
    for (const [name, m] of states.filter(([, x]) => x.Type === 'Map')) expect((m.ItemSelector as Record<string, string>)['execution.$'], name).toBe('$$.Execution.Id');
  });

  if (machine === 'doctype-copy') {
    it('keeps one approval request through the cut-over wait: the top-off runs in executions it starts and waits for, never by handing the approving execution over', () => {
      const run = stateNamed('RunTopOff');
      expect(run.Resource).toBe('arn:aws:states:::states:startExecution.sync:2');
      expect(run.Parameters).toMatchObject({ 'StateMachineArn.$': '$$.StateMachine.Id', Input: { 'migration.$': '$.migration', 'topOffFor.$': '$$.Execution.Id' } });
      expect(stateNamed('AfterRunTopOff').Default).toBe('RunTopOff');
      expect(JSON.stringify(asl.States.CutOver)).not.toMatch(/HandOver|ContinueAsNew/);
      // a started execution goes straight to the top-off loop, which ends when it stopped or ran long enough
      const init = asl.States.Init!.Choices as { Next: string; And: { Variable: string }[] }[];
      expect(init[0]!.And.map((c) => c.Variable)).toContain('$.topOffFor');
      expect(stateNamed(init[0]!.Next).Next).toBe('TopOffForParent');
      expect((stateNamed('AfterTopOffForParent').Choices as { Variable: string; Next: string }[]).filter((c) => c.Next === 'TopOffForParentDone').map((c) => c.Variable).sort()).toEqual(['$.state.continueAsNew', '$.state.stopped']);
    });

    it('names a top-off that timed out as such, never as an approval that timed out', () => {
      expect(leadsTo('TopOffForParent', 'States.Timeout')).toBe('TopOffTimedOut');
      expect(leadsTo('RunTopOff', 'States.Timeout')).toBe('MigrationFailed');
      expect(stateNamed('TopOffRunTimedOut').Error).toBe('TopOffTimedOut');
      expect(leadsTo('RunTopOff', 'States.TaskFailed')).toBe('MigrationFailed');
      expect(leadsTo('AwaitCutoverApproval', 'States.Timeout')).toBe('ApprovalTimedOut');
    });
  }

  it('maps every Lambda Task to a local handler, and only those', () => {
    const lambdaTasks = tasks.filter(([, s]) => /^\$\{\w+FunctionArn\}$/.test(String(s.Resource))).map(([n]) => n).sort();
    expect(lambdaTasks).toEqual(Object.keys(MACHINES[machine]!.handlers).sort());
  });

  it('waits for a callback token at both approvals, and a rejection or a timeout ends in a named failure', () => {
    const approvals = states.filter(([n]) => n === 'AwaitCutoverApproval' || n === 'AwaitCleanupApproval');
    expect(approvals).toHaveLength(2);
    for (const [name, s] of approvals) {
      expect(s.Resource, name).toBe('arn:aws:states:::lambda:invoke.waitForTaskToken');
      expect((s.Parameters as { Payload: Record<string, string> }).Payload['token.$']).toBe('$$.Task.Token');
      expect(['ApprovalRejected', 'AbandonAlter']).toContain(leadsTo(name, 'ApprovalRejected'));
      // online-alter takes its triggers back before it ends as timed out
      const timedOut = leadsTo(name, 'States.Timeout');
      expect(timedOut === 'ApprovalTimedOut' || (timedOut === 'TakeBackCapture' && (asl.States.AfterTakeBack!.Choices as { Next: string }[])[0]!.Next === 'ApprovalTimedOut')).toBe(true);
    }
  });

  it('routes every checkpoint phase', () => {
    const routed = (asl.States.RouteByPhase!.Choices as { StringEquals: string }[]).map((c) => c.StringEquals).sort();
    expect([...new Set(routed)]).toEqual([...PHASES[machine]!].sort());
  });

  it('does nothing irreversible before the cutover approval: its only way on is through it', () => {
    const after = machine === 'online-alter' ? 'SwapTables' : 'SetCutoverFlags';
    expect(states.find(([n]) => n === 'AwaitCutoverApproval')![1].Next).toBe(after);
    expect(states.filter(([, s]) => s.Next === after).map(([n]) => n)).toEqual(['AwaitCutoverApproval']);
  });

  it('hands over to a new execution through startExecution', () => {
    const s = asl.States.ContinueAsNew!;
    expect(s.Resource).toBe('arn:aws:states:::states:startExecution');
    expect(s.Parameters).toMatchObject({ 'StateMachineArn.$': '$$.StateMachine.Id', Input: { 'migration.$': '$.migration', 'handedOverBy.$': '$$.Execution.Id' } });
    // the new execution recognises the hand-over and tells Preflight who handed over
    expect(asl.States[asl.StartAt]!.Type).toBe('Choice');
    expect((asl.States.ContinueFromHandover!.Parameters as { state: Record<string, string> }).state['handedOverBy.$']).toBe('$.handedOverBy');
    expect((asl.States.Preflight!.Parameters as Record<string, string>)['execution.$']).toBe('$$.Execution.Id');
  });

  if (machine === 'online-alter') {
    it('takes the triggers back on every failure before the swap, and never after it', () => {
      for (const name of ['CreateShadow', 'CopyChunks', 'Verify', 'SwapTables']) {
        expect((asl.States[name]!.Catch as { ErrorEquals: string[]; Next: string }[]).find((c) => c.ErrorEquals.includes('States.ALL'))!.Next, name).toBe('TakeBackCapture');
      }
      for (const name of ['AwaitCleanupApproval', 'Cleanup', 'Summarize']) {
        expect((asl.States[name]!.Catch as { Next: string }[]).map((c) => c.Next), name).not.toContain('TakeBackCapture');
      }
      expect(asl.States.TakeBackCapture!.Resource).toBe(asl.States.AbandonAlter!.Resource);
    });
  }

  it('uses JSONPath only (aws-local-stepfunctions ignores JSONata and Assign)', () => {
    const text = JSON.stringify(asl);
    expect(text).not.toMatch(/JSONata|"Assign"|"Arguments"/);
  });
});
