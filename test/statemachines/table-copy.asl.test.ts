import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { aslPath } from '../../bin/cli/machines.ts';
import { MACHINES } from '../../bin/cli/machines.ts';
import { PHASES } from '../../lambdas/table-copy/migration.ts';

const validator = createRequire(import.meta.url)('asl-validator') as (d: unknown, o: { checkArn: boolean; checkPaths: boolean }) => { isValid: boolean; errorsText: (sep?: string) => string };
type State = Record<string, unknown> & { Type: string };
const asl = JSON.parse(readFileSync(aslPath('table-copy'), 'utf8')) as { StartAt: string; States: Record<string, State> };
const states = Object.entries(asl.States);
const tasks = states.filter(([, s]) => s.Type === 'Task');

describe('statemachines/table-copy.asl.json', () => {
  it('is valid ASL with its ${…} placeholders', () => {
    const result = validator(asl, { checkArn: true, checkPaths: true });
    expect(result.errorsText('\n')).toBe('');
    expect(result.isValid).toBe(true);
  });

  it('gives every Task an explicit timeout (locally the default would be 60 s)', () => {
    for (const [name, s] of tasks) expect(s.TimeoutSeconds, name).toBeGreaterThan(0);
  });

  it('retries transient errors and catches everything else into a named failure', () => {
    for (const [name, s] of tasks) {
      const retry = s.Retry as { ErrorEquals: string[] }[];
      const caught = (s.Catch as { ErrorEquals: string[]; Next: string }[]).flatMap((c) => c.ErrorEquals);
      expect(caught, name).toContain('States.ALL');
      if (String(s.Resource).includes('FunctionArn')) expect(retry.flatMap((r) => r.ErrorEquals), name).toContain('TransientError');
    }
  });

  it('maps every Lambda Task to a local handler, and only those', () => {
    const lambdaTasks = tasks.filter(([, s]) => /^\$\{\w+FunctionArn\}$/.test(String(s.Resource))).map(([n]) => n).sort();
    expect(lambdaTasks).toEqual(Object.keys(MACHINES['table-copy']!.handlers).sort());
  });

  it('waits for a callback token at both approvals, and refuses on rejection or timeout', () => {
    for (const name of ['AwaitCutoverApproval', 'AwaitCleanupApproval']) {
      const s = asl.States[name]!;
      expect(s.Resource).toBe('arn:aws:states:::lambda:invoke.waitForTaskToken');
      expect((s.Parameters as { Payload: Record<string, string> }).Payload['token.$']).toBe('$$.Task.Token');
      const catches = s.Catch as { ErrorEquals: string[]; Next: string }[];
      expect(catches.find((c) => c.ErrorEquals.includes('ApprovalRejected'))?.Next).toBe('ApprovalRejected');
      expect(catches.find((c) => c.ErrorEquals.includes('States.Timeout'))?.Next).toBe('ApprovalTimedOut');
    }
  });

  it('routes every checkpoint phase, and the cutover flags come only after the cutover approval', () => {
    const routed = (asl.States.RouteByPhase!.Choices as { StringEquals: string }[]).map((c) => c.StringEquals).sort();
    expect(routed).toEqual([...PHASES].sort());
    expect(asl.States.AwaitCutoverApproval!.Next).toBe('SetCutoverFlags');
    const into = states.filter(([, s]) => s.Next === 'SetCutoverFlags').map(([n]) => n);
    expect(into).toEqual(['AwaitCutoverApproval']);
  });

  it('hands over to a new execution through startExecution', () => {
    const s = asl.States.ContinueAsNew!;
    expect(s.Resource).toBe('arn:aws:states:::states:startExecution');
    expect(s.Parameters).toMatchObject({ 'StateMachineArn.$': '$$.StateMachine.Id', 'Input.$': '$.migration' });
  });

  it('uses JSONPath only (aws-local-stepfunctions ignores JSONata and Assign)', () => {
    const text = JSON.stringify(asl);
    expect(text).not.toMatch(/JSONata|"Assign"|"Arguments"/);
  });
});
