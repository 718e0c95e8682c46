import { readFileSync } from 'node:fs';
import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../infra/config.ts';
import { FerryStack } from '../../infra/ferry-stack.ts';
import { WORKERS } from '../../infra/workers.ts';

const cdkJson = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8'));
const config = parseConfig(cdkJson.context.ferry);

/** The stack as `cdk synth` builds it, without bundling the functions (their code is not what is asserted). */
function synth(withNag = false): { template: Template; app: App } {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new FerryStack(app, 'Ferry', { config });
  if (withNag) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { template: Template.fromStack(stack), app };
}

type Resource = { Type: string; Properties: Record<string, unknown> };
type Statement = { Action: string | string[]; Resource: unknown; Effect: string };

/** A synthesized definition and the functions its `${…}` placeholders are bound to (by logical id). */
function definitionOf(sm: Resource): { asl: { States: Record<string, Record<string, unknown>> }; text: string; functions: Record<string, string> } {
  const text = sm.Properties.DefinitionString as string;
  const subs = (sm.Properties.DefinitionSubstitutions ?? {}) as Record<string, { 'Fn::GetAtt'?: [string, string] }>;
  const functions = Object.fromEntries(Object.entries(subs).map(([k, v]) => [k, v['Fn::GetAtt']?.[0] ?? '(not a function)']));
  return { asl: JSON.parse(text), text, functions };
}

function allTasks(states: Record<string, Record<string, unknown>>): [string, Record<string, unknown>][] {
  return Object.entries(states).flatMap(([name, s]) => [
    ...(s.Type === 'Task' ? [[name, s] as [string, Record<string, unknown>]] : []),
    ...((s.Branches as { States: Record<string, Record<string, unknown>> }[] | undefined) ?? []).flatMap((b) => allTasks(b.States)),
  ]);
}

describe('FerryStack', () => {
  let template: Template;
  let resources: Record<string, Resource>;
  beforeAll(() => {
    template = synth().template;
    resources = template.toJSON().Resources;
  });
  const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);

  it('deploys the three state machines, inlined from the ASL files, each invoking only functions of this stack', () => {
    const machines = ofType('AWS::StepFunctions::StateMachine');
    expect(machines.map(([, r]) => r.Properties.StateMachineName).sort()).toEqual(['ferry-doctype-copy', 'ferry-online-alter', 'ferry-table-copy']);
    for (const [id, sm] of machines) {
      const { asl, text, functions } = definitionOf(sm);
      const used = [...new Set([...text.matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]!))].sort();
      expect(used.length, id).toBeGreaterThan(5);
      expect(Object.keys(functions).sort(), id).toEqual(used);
      for (const fn of Object.values(functions)) expect(resources[fn]?.Type, `${id} → ${fn}`).toBe('AWS::Lambda::Function');
      for (const [name, task] of allTasks(asl.States)) expect(task.TimeoutSeconds, `${id} ${name}`).toBeGreaterThan(0);
    }
  });

  it('runs every task function on Node 22, arm64, traced, with its own role and log group', () => {
    const functions = ofType('AWS::Lambda::Function');
    expect(functions.length).toBe(WORKERS.length + 2);
    const roles = new Set<string>();
    for (const [id, f] of functions) {
      expect(f.Properties.Runtime, id).toBe('nodejs22.x');
      expect(f.Properties.Architectures, id).toEqual(['arm64']);
      expect(f.Properties.TracingConfig, id).toEqual({ Mode: 'Active' });
      expect((f.Properties.LoggingConfig as { LogGroup?: unknown })?.LogGroup, id).toBeDefined();
      roles.add(JSON.stringify(f.Properties.Role));
    }
    expect(roles.size).toBe(functions.length);
  });

  it('never grants ssm, secretsmanager or rds-data on "*"', () => {
    for (const [id, p] of ofType('AWS::IAM::Policy')) {
      for (const st of (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement) {
        const actions = ([] as string[]).concat(st.Action);
        if (actions.some((a) => /^(ssm|secretsmanager|rds-data):/.test(a))) {
          expect(([] as unknown[]).concat(st.Resource), `${id} ${actions.join(',')}`).not.toContain('*');
        }
      }
    }
  });

  it('scopes each function to what its task touches', () => {
    const policyOf = (worker: string) => {
      const [, p] = ofType('AWS::IAM::Policy').find(([id]) => id.startsWith(`Workers${worker}Role`))!;
      return (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement;
    };
    const actions = (worker: string) => policyOf(worker).flatMap((s) => ([] as string[]).concat(s.Action));
    // flag writers write flags; the copy loop only reads the pause flag; the doc tasks never see MySQL
    expect(actions('SetCutoverFlags')).toContain('ssm:PutParameter');
    expect(actions('CopyChunks')).not.toContain('ssm:PutParameter');
    expect(policyOf('CopyChunks').find((s) => s.Action === 'ssm:GetParameter')!.Resource).toEqual(
      { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ssm:eu-west-1:123456789012:parameter/ferry/*/flags/FERRY_PAUSED']] },
    );
    expect(actions('CopyChunks')).toContain('rds-data:ExecuteStatement');
    expect(actions('TopOff')).not.toContain('rds-data:ExecuteStatement');
    const topOffSecrets = policyOf('TopOff').find((s) => s.Action === 'secretsmanager:GetSecretValue')!.Resource;
    expect([topOffSecrets].flat()).toEqual([config.connections.couch.main!.secretArn]);
    const copySecrets = policyOf('CopyChunks').find((s) => s.Action === 'secretsmanager:GetSecretValue')!.Resource;
    expect([copySecrets].flat()).toEqual(Object.values(config.connections.mysql).map((c) => c.secretArn));
  });

  it('lets each Preflight ask only about executions of its own machine', () => {
    for (const [worker, machine] of [['Preflight', 'table-copy'], ['DocPreflight', 'doctype-copy'], ['AlterPreflight', 'online-alter']] as const) {
      const [, p] = ofType('AWS::IAM::Policy').find(([id]) => id.startsWith(`Workers${worker}Role`))!;
      const st = (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement.find((s) => s.Action === 'states:DescribeExecution')!;
      expect(JSON.stringify(st.Resource)).toContain(`:execution:ferry-${machine}:*`);
    }
    const [, copy] = ofType('AWS::IAM::Policy').find(([id]) => id.startsWith('WorkersCopyChunksRole'))!;
    expect(JSON.stringify(copy.Properties.PolicyDocument)).not.toContain('states:');
  });

  it('lets a state machine invoke only its own functions and start only itself', () => {
    const [, policy] = ofType('AWS::IAM::Policy').find(([id]) => id.startsWith('TableCopyRole'))!;
    const statements = (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement;
    const invoke = statements.find((s) => s.Action === 'lambda:InvokeFunction')!;
    const invoked = ([] as { 'Fn::GetAtt': [string, string] }[]).concat(invoke.Resource as never).map((r) => r['Fn::GetAtt'][0]).sort();
    const [, sm] = ofType('AWS::StepFunctions::StateMachine').find(([id]) => id.startsWith('TableCopy'))!;
    expect(invoked).toEqual([...new Set(Object.values(definitionOf(sm).functions))].sort());
    expect(invoked.some((id) => /Doc|Alter|TopOff|Swap/.test(id))).toBe(false);
    const start = statements.find((s) => s.Action === 'states:StartExecution')!;
    expect(JSON.stringify(start.Resource)).toContain(':stateMachine:ferry-table-copy');
  });

  it('lets doctype-copy wait for the top-off executions it starts, and only it', () => {
    const actionsOf = (prefix: string) => {
      const [, policy] = ofType('AWS::IAM::Policy').find(([id]) => id.startsWith(prefix))!;
      return (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement;
    };
    const doc = actionsOf('DoctypeCopyRole');
    const describe = doc.find((s) => JSON.stringify(s.Action).includes('states:DescribeExecution'))!;
    expect([describe.Action].flat().sort()).toEqual(['states:DescribeExecution', 'states:StopExecution']);
    expect(JSON.stringify(describe.Resource)).toContain(':execution:ferry-doctype-copy:*');
    const events = doc.find((s) => JSON.stringify(s.Action).includes('events:PutRule'))!;
    expect(JSON.stringify(events.Resource)).toContain(':rule/StepFunctionsGetEventsForStepFunctionsExecutionRule');
    expect(JSON.stringify(actionsOf('TableCopyRole'))).not.toMatch(/DescribeExecution|events:/);
  });

  it('logs every state of every machine and traces it', () => {
    template.allResourcesProperties('AWS::StepFunctions::StateMachine', {
      LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: true, Destinations: Match.anyValue() },
      TracingConfiguration: { Enabled: true },
    });
    template.resourceCountIs('AWS::Logs::LogGroup', WORKERS.length + 2 + 3);
  });

  it('keeps approval tokens where only approvers can read them, and publishes the request on an encrypted topic', () => {
    const approvers = ofType('AWS::IAM::Policy').filter(([, p]) => JSON.stringify(p.Properties.Roles).includes('ferry-approvers'));
    const text = JSON.stringify(approvers);
    expect(text).toContain('states:SendTaskSuccess');
    expect(text).toContain('kms:Decrypt');
    expect(text).toContain('/approvals/*');
    const grantedDecrypt = ofType('AWS::IAM::Policy').filter(([, p]) => JSON.stringify(p.Properties.PolicyDocument).includes('kms:Decrypt')).map(([id]) => id);
    expect(grantedDecrypt.every((id) => /Approvers|ApprovalsRequestApproval/.test(id))).toBe(true);
    template.allResourcesProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
  });

  it('alarms on failed executions, long throttling and approvals waiting too long', () => {
    const alarms = ofType('AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    expect(alarms.filter((a) => a.MetricName === 'ExecutionsFailed')).toHaveLength(3);
    expect(alarms.filter((a) => a.MetricName === 'ThrottledSeconds')).toHaveLength(3);
    expect(alarms.filter((a) => a.MetricName === 'OldestPendingApprovalHours').map((a) => a.Threshold)).toEqual([24]);
    for (const a of alarms) expect((a.AlarmActions as unknown[]).length).toBe(1);
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });

  it('lets the applications named in config read the flags, and only the flags', () => {
    const readers = ofType('AWS::IAM::Policy').filter(([id]) => id.startsWith('FlagReader'));
    expect(readers).toHaveLength(2);
    for (const [, p] of readers) {
      const st = (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement;
      expect(JSON.stringify(st)).toMatch(/parameter\/ferry\/\*\/flags/);
      expect(st.flatMap((s) => ([] as string[]).concat(s.Action)).every((a) => a.startsWith('ssm:Get'))).toBe(true);
    }
  });

  it('lets operators start, follow and stop executions (ferry abandon --aws), and nothing more on Step Functions', () => {
    const policies = ofType('AWS::IAM::Policy').filter(([id]) => id.startsWith('Operators'));
    const actions = policies.flatMap(([, p]) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement.flatMap((s) => ([] as string[]).concat(s.Action)));
    expect(actions.filter((a) => a.startsWith('states:')).sort()).toEqual(['states:DescribeExecution', 'states:GetExecutionHistory', 'states:ListExecutions', 'states:StartExecution', 'states:StopExecution']);
  });

  it('passes the cdk-nag AwsSolutions checks with every finding acknowledged for a reason', () => {
    const { app } = synth(true);
    expect(() => app.synth()).not.toThrow();
  });
});
