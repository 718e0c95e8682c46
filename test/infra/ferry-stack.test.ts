import { readFileSync } from 'node:fs';
import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { environments, parseConfig, type Environment } from '../../infra/config.ts';
import { inputJsonSchema, MACHINE_NAMES } from '../../infra/console-inputs.ts';
import { FerryStack, stackId } from '../../infra/ferry-stack.ts';
import { TASK_FUNCTION_TIMEOUT, WORKERS } from '../../infra/workers.ts';
import { progressReporter, telemetry } from '../../lambdas/adapters/telemetry.ts';
import { MACHINES } from '../../bin/cli/machines.ts';

const cdkJson = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8'));
const production = environments(cdkJson.context.ferry, 'production')[0]!;
const config = production.config;

/** The stack as `cdk synth` builds it, without bundling the functions (their code is not what is asserted). */
function synth(withNag = false, env: Environment = production): { template: Template; app: App } {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new FerryStack(app, stackId(env.deployment), { config: env.config, deployment: env.deployment });
  if (withNag) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { template: Template.fromStack(stack), app };
}

type Resource = { Type: string; Properties: Record<string, unknown> };
type Statement = { Action: string | string[]; Resource: unknown; Effect: string; Condition?: unknown };

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
    expect(machines.map(([, r]) => r.Properties.StateMachineName).sort()).toEqual(['ferry-production-doctype-copy', 'ferry-production-online-alter', 'ferry-production-table-copy']);
    for (const [id, sm] of machines) {
      const { asl, text, functions } = definitionOf(sm);
      const used = [...new Set([...text.matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]!))].sort();
      expect(used.length, id).toBeGreaterThan(5);
      expect(Object.keys(functions).sort(), id).toEqual(used);
      for (const fn of Object.values(functions)) expect(resources[fn]?.Type, `${id} → ${fn}`).toBe('AWS::Lambda::Function');
      for (const [name, task] of allTasks(asl.States)) expect(task.TimeoutSeconds, `${id} ${name}`).toBeGreaterThan(0);
    }
  });

  it('runs every function on Node 22, arm64, traced, with its own role and log group, trusting the RDS certificate authorities', () => {
    const functions = ofType('AWS::Lambda::Function');
    expect(functions.length).toBe(WORKERS.length + 5);
    const roles = new Set<string>();
    for (const [id, f] of functions) {
      expect(f.Properties.Runtime, id).toBe('nodejs22.x');
      expect(f.Properties.Architectures, id).toEqual(['arm64']);
      expect(f.Properties.TracingConfig, id).toEqual({ Mode: 'Active' });
      expect((f.Properties.LoggingConfig as { LogGroup?: unknown })?.LogGroup, id).toBeDefined();
      expect((f.Properties.Environment as { Variables: Record<string, string> }).Variables, id).toMatchObject({ NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem', FERRY_ENV: 'production' });
      roles.add(JSON.stringify(f.Properties.Role));
    }
    expect(roles.size).toBe(functions.length);
  });

  it('gives every Task a timeout above its Lambda\'s, and every task Lambda one above the 300 s budget', () => {
    const lambdas = Object.fromEntries(ofType('AWS::Lambda::Function').map(([id, f]) => [id, f.Properties.Timeout as number]));
    expect(TASK_FUNCTION_TIMEOUT.toSeconds()).toBeGreaterThan(300);
    for (const [id, sm] of ofType('AWS::StepFunctions::StateMachine')) {
      const { asl, functions } = definitionOf(sm);
      for (const [name, task] of allTasks(asl.States)) {
        const placeholder = /^\$\{(\w+)\}$/.exec(String(task.Resource))?.[1] ?? /^\$\{(\w+)\}$/.exec(String((task.Parameters as { FunctionName?: string } | undefined)?.FunctionName))?.[1];
        if (!placeholder) continue;
        const timeout = lambdas[functions[placeholder]!]!;
        if (name.startsWith('Await')) continue; // a callback wait outlives its Lambda by design
        expect(task.TimeoutSeconds as number, `${id} ${name}`).toBeGreaterThan(timeout);
      }
    }
  });

  it('places in the VPC only the functions that open sessions there, with endpoints for the AWS APIs they call', () => {
    const inVpc = ofType('AWS::Lambda::Function').filter(([, f]) => f.Properties.VpcConfig).map(([id]) => id);
    const mysqlTasks = WORKERS.filter((w) => w.store === 'mysql').map((w) => `Workers${w.name}Function`);
    expect(inVpc.map((id) => id.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual(mysqlTasks.sort());
    const endpoints = ofType('AWS::EC2::VPCEndpoint').map(([, e]) => JSON.stringify(e.Properties.ServiceName));
    for (const service of ['secretsmanager', 'ssm', 'states', 'rds-data']) expect(endpoints.some((e) => e.includes(`.${service}`)), service).toBe(true);
    template.hasResourceProperties('AWS::EC2::SecurityGroup', {
      SecurityGroupIngress: [Match.objectLike({ FromPort: 443, ToPort: 443, SourceSecurityGroupId: config.vpc!.securityGroupIds[0] })],
    });
    // no managed policy with logs:* on *: the network-interface actions only
    expect(JSON.stringify(ofType('AWS::IAM::Role'))).not.toContain('AWSLambdaVPCAccessExecutionRole');
    const nat = synth(false, { ...production, config: parseConfig({ ...cdkJson.context.ferry.environments.production, vpc: { ...cdkJson.context.ferry.environments.production.vpc, awsApis: 'nat' } }) });
    nat.template.resourceCountIs('AWS::EC2::VPCEndpoint', 0);
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
      { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ssm:eu-west-1:123456789012:parameter/ferry-production/*/flags/FERRY_PAUSED']] },
    );
    // the loops that check the pause flag read the knobs too, and only read them
    expect(policyOf('CopyChunks').find((s) => s.Action === 'ssm:GetParametersByPath')!.Resource).toEqual(
      { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ssm:eu-west-1:123456789012:parameter/ferry-production/*/knobs']] },
    );
    expect(actions('SetCutoverFlags')).not.toContain('ssm:GetParametersByPath');
    // table-copy's revert carries rows back in a throttled loop: it reads the knobs too, and sets flags back
    expect(actions('Revert')).toEqual(expect.arrayContaining(['ssm:GetParametersByPath', 'ssm:PutParameter', 'ssm:DeleteParameters']));
    expect(actions('DocRevert')).not.toContain('ssm:GetParametersByPath');
    // doctype-copy's top-off, which runs until the cleanup begins, reports the old database's lag there, and writes nothing else in SSM
    expect(policyOf('TopOff').filter((st) => ([] as string[]).concat(st.Action).includes('ssm:PutParameter')).map((st) => JSON.stringify(st.Resource))).toEqual([expect.stringMatching(/parameter\/ferry-production\/\*\/status\/lag"\]\]\}$/)]);
    // grants nothing unused
    const everything = JSON.stringify(ofType('AWS::IAM::Policy'));
    expect(everything).not.toContain('rds-data:BatchExecuteStatement');
    expect(everything).not.toContain('kms:ReEncrypt');
    expect(actions('CopyChunks')).toContain('rds-data:ExecuteStatement');
    expect(actions('TopOff')).not.toContain('rds-data:ExecuteStatement');
    const topOffSecrets = policyOf('TopOff').find((s) => s.Action === 'secretsmanager:GetSecretValue')!.Resource;
    expect([topOffSecrets].flat()).toEqual([config.connections.couch.main!.secretArn]);
    const copySecrets = policyOf('CopyChunks').find((s) => s.Action === 'secretsmanager:GetSecretValue')!.Resource;
    expect([copySecrets].flat()).toEqual(Object.values(config.connections.mysql).map((c) => c.secretArn));
  });

  it.each([['Reverify', 'table-copy'], ['AlterReverify', 'online-alter']])('re-verifies beside pending cut-over approvals on a schedule (%s, %s), one run at a time, reading no approval token', (worker, machine) => {
    const [fnId, fn] = ofType('AWS::Lambda::Function').find(([id]) => id.startsWith(`Workers${worker}Function`))!;
    expect(fn.Properties.ReservedConcurrentExecutions).toBe(1);
    expect(JSON.stringify((fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables.FERRY_MACHINE_ARN)).toContain(`:stateMachine:ferry-production-${machine}"`);
    const rules = ofType('AWS::Events::Rule').filter(([, r]) => JSON.stringify(r.Properties.Targets).includes(fnId));
    expect(rules.map(([, r]) => r.Properties.ScheduleExpression)).toEqual(['rate(5 minutes)']);
    const [, p] = ofType('AWS::IAM::Policy').find(([id]) => id.startsWith(`Workers${worker}Role`))!;
    const statements = (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement;
    const actions = statements.flatMap((st) => ([] as string[]).concat(st.Action));
    expect(actions).toEqual(expect.arrayContaining(['ssm:GetParametersByPath', 'states:ListExecutions', 'states:DescribeExecution']));
    // names and dates of the pending approvals only: no decryption, no token, no decision
    for (const a of ['kms:Decrypt', 'states:SendTaskSuccess', 'states:SendTaskFailure']) expect(actions, a).not.toContain(a);
    // it writes only its own reports, for the approval page and ferry status: the re-verification and the old home's lag
    const puts = statements.filter((x) => ([] as string[]).concat(x.Action).includes('ssm:PutParameter'));
    expect(puts.flatMap((st) => [st.Resource].flat().map((r) => JSON.stringify(r).replace(/^.*parameter\/ferry-production/, '').replace(/"\]\]\}$/, '')))).toEqual(['/*/status/reverify', '/*/status/lag']);
    // the one parameter it reads by name is the pause flag, which its throttle checks like every loop's
    for (const st of statements.filter((x) => ([] as string[]).concat(x.Action).includes('ssm:GetParameter'))) expect(JSON.stringify(st.Resource)).toMatch(/flags\/FERRY_PAUSED"/);
  });

  it('runs ferry plan --aws in named plan functions beside the tasks, which operators alone may invoke', () => {
    const functions = ofType('AWS::Lambda::Function').map(([, f]) => f.Properties.FunctionName).filter(Boolean);
    expect(functions.sort()).toEqual(['ferry-production-doctype-copy-plan', 'ferry-production-online-alter-plan', 'ferry-production-table-copy-plan']);
    const operators = ofType('AWS::IAM::Policy').filter(([id]) => id.startsWith('Operators')).flatMap(([, p]) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
    const invoke = operators.find((st) => st.Action === 'lambda:InvokeFunction')!;
    expect(JSON.stringify(invoke.Resource)).toMatch(/function:ferry-production-table-copy-plan.*function:ferry-production-doctype-copy-plan.*function:ferry-production-online-alter-plan/);
    const [, metrics] = ofType('AWS::IAM::Policy').find(([id]) => id.startsWith('WorkersPlanMetrics'))!;
    expect((metrics.Properties.PolicyDocument as { Statement: Statement[] }).Statement).toEqual([expect.objectContaining({ Action: 'cloudwatch:GetMetricStatistics' })]);
  });

  it('lets each Preflight ask only about executions of its own machine', () => {
    for (const [worker, machine] of [['Preflight', 'table-copy'], ['DocPreflight', 'doctype-copy'], ['AlterPreflight', 'online-alter']] as const) {
      const [, p] = ofType('AWS::IAM::Policy').find(([id]) => id.startsWith(`Workers${worker}Role`))!;
      const st = (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement.find((s) => JSON.stringify(s.Action).includes('states:DescribeExecution'))!;
      expect([st.Action].flat().sort()).toEqual(['states:DescribeExecution', 'states:GetExecutionHistory']);
      expect(JSON.stringify(st.Resource)).toContain(`:execution:ferry-production-${machine}:*`);
    }
    const [, copy] = ofType('AWS::IAM::Policy').find(([id]) => id.startsWith('WorkersCopyChunksRole'))!;
    expect(JSON.stringify(copy.Properties.PolicyDocument)).not.toContain('states:');
  });

  it('lets each Preflight claim a migration id (create or read <root>/*/owner) and each plan function only read it; no other function touches it', () => {
    const ownerStatements = (worker: string) => {
      const [, p] = ofType('AWS::IAM::Policy').find(([id]) => id.startsWith(`Workers${worker}Role`))!;
      return (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement.filter((s) => JSON.stringify(s.Resource).includes('/owner'));
    };
    for (const worker of ['Preflight', 'DocPreflight', 'AlterPreflight']) {
      const st = ownerStatements(worker);
      expect(st, worker).toHaveLength(1);
      expect([st[0]!.Action].flat().sort(), worker).toEqual(['ssm:GetParameter', 'ssm:PutParameter']);
      expect(JSON.stringify(st[0]!.Resource), worker).toMatch(/:parameter\/ferry-production\/\*\/owner"/);
    }
    for (const worker of ['Plan', 'DocPlan', 'AlterPlan']) {
      const st = ownerStatements(worker);
      expect(st.map((s) => s.Action), worker).toEqual(['ssm:GetParameter']);
    }
    const others = WORKERS.map((w) => w.name).filter((n) => !/Preflight$|Plan$/.test(n));
    expect(others.length).toBeGreaterThan(10);
    for (const worker of others) expect(ownerStatements(worker), worker).toEqual([]);
    // no operator, approver or application is granted it by the stack: an id is freed by hand, with rights of one's own
    const people = ofType('AWS::IAM::Policy').filter(([id]) => !id.startsWith('Workers')).flatMap(([, p]) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
    expect(people.length).toBeGreaterThan(5);
    for (const st of people) expect(JSON.stringify(st.Resource)).not.toContain('/owner');
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
    expect(JSON.stringify(start.Resource)).toContain(':stateMachine:ferry-production-table-copy');
  });

  it('lets doctype-copy wait for the top-off executions it starts, and only it', () => {
    const actionsOf = (prefix: string) => {
      const [, policy] = ofType('AWS::IAM::Policy').find(([id]) => id.startsWith(prefix))!;
      return (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement;
    };
    const doc = actionsOf('DoctypeCopyRole');
    const describe = doc.find((s) => JSON.stringify(s.Action).includes('states:DescribeExecution'))!;
    expect([describe.Action].flat().sort()).toEqual(['states:DescribeExecution', 'states:StopExecution']);
    expect(JSON.stringify(describe.Resource)).toContain(':execution:ferry-production-doctype-copy:*');
    const events = doc.find((s) => JSON.stringify(s.Action).includes('events:PutRule'))!;
    expect(JSON.stringify(events.Resource)).toContain(':rule/StepFunctionsGetEventsForStepFunctionsExecutionRule');
    expect(JSON.stringify(actionsOf('TableCopyRole'))).not.toMatch(/DescribeExecution|events:/);
  });

  it('logs every state of every machine without its data, traces it, and names its log group after the deployment', () => {
    template.allResourcesProperties('AWS::StepFunctions::StateMachine', {
      LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: false, Destinations: Match.anyValue() },
      TracingConfiguration: { Enabled: true },
    });
    template.resourceCountIs('AWS::Logs::LogGroup', WORKERS.length + 5 + 3 + 1);
    const groups = ofType('AWS::Logs::LogGroup');
    expect(groups.map(([, g]) => g.Properties.LogGroupName).filter(Boolean).sort()).toEqual(MACHINE_NAMES.map((m) => `/aws/vendedlogs/states/ferry-production-${m}`).sort());
    // a rolled-back first deploy removes them; updates and deletes keep them
    const raw = template.toJSON().Resources as Record<string, { Type: string; DeletionPolicy?: string; UpdateReplacePolicy?: string }>;
    for (const [id, g] of Object.entries(raw).filter(([, r]) => r.Type === 'AWS::Logs::LogGroup')) expect(g.DeletionPolicy, id).toBe('RetainExceptOnCreate');
  });

  it('lets staging and production live in one account and region: no name in common', () => {
    const names = (env: Environment) => {
      const t = synth(false, env).template.toJSON().Resources as Record<string, Resource>;
      return Object.values(t).flatMap((r) => [r.Properties?.StateMachineName, r.Properties?.LogGroupName, r.Properties?.DashboardName].filter((n): n is string => typeof n === 'string'));
    };
    const [staging, prod] = environments(cdkJson.context.ferry).map(names);
    expect(prod!.length).toBeGreaterThan(5);
    expect(staging!.filter((n) => prod!.includes(n))).toEqual([]);
  });

  it('keeps approval tokens where only ferry\'s functions can read them: approvers decide through the decision endpoint (IAM-signed, MFA), and tokens are forgotten when an execution ends', () => {
    // production's approvers are an Identity Center permission set: the stack cannot attach to its role, and says what the set needs
    expect(ofType('AWS::IAM::Policy').filter(([, p]) => JSON.stringify(p.Properties.Roles).includes('AWSReservedSSO'))).toEqual([]);
    const permissionSet = JSON.stringify(template.toJSON().Outputs.ApproversPermissionSetPolicy.Value);
    expect(permissionSet).toContain('execute-api:Invoke');
    // Identity Center's sessions carry no aws:MultiFactorAuthPresent (its own sign-in asks for MFA): the condition would lock every approver out
    expect(permissionSet).not.toContain('MultiFactorAuthPresent');
    expect(permissionSet).not.toContain('SendTask');
    // staging's approvers are a role of the account: the stack attaches what they may do
    const staging = environments(cdkJson.context.ferry, 'staging')[0]!;
    const stagingTemplate = synth(false, staging).template.toJSON() as { Resources: Record<string, Resource> };
    const approvers = Object.entries(stagingTemplate.Resources).filter(([, p]) => p.Type === 'AWS::IAM::Policy' && JSON.stringify(p.Properties.Roles).includes('ferry-approvers'));
    const statements = approvers.flatMap(([, p]) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
    const actions = statements.flatMap((st) => ([] as string[]).concat(st.Action));
    // no person completes a task, decrypts a token or reads one
    for (const a of ['states:SendTaskSuccess', 'states:SendTaskFailure', 'kms:Decrypt', 'ssm:GetParametersByPath', 'cloudtrail:LookupEvents']) expect(actions, a).not.toContain(a);
    expect(JSON.stringify(statements)).not.toContain('/approvals/');
    expect(actions.sort()).toEqual(['execute-api:Invoke', 'ssm:GetParameter']);
    const invoke = statements.find((st) => JSON.stringify(st.Action).includes('execute-api:Invoke'))!;
    // staging is configured without MFA
    expect(invoke.Condition).toBeUndefined();
    // a role of the account whose approvers need MFA gets the condition
    const withMfa = synth(false, { ...staging, config: { ...staging.config, approvers: { ...staging.config.approvers, requireMfa: true, page: {} } } }).template.toJSON() as { Resources: Record<string, Resource> };
    const mfaInvoke = Object.values(withMfa.Resources).filter((p) => p.Type === 'AWS::IAM::Policy' && JSON.stringify(p.Properties.Roles).includes('ferry-approvers')).flatMap((p) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement).find((st) => JSON.stringify(st.Action).includes('execute-api:Invoke'))!;
    expect(mfaInvoke.Condition).toEqual({ Bool: { 'aws:MultiFactorAuthPresent': 'true' } });
    expect(JSON.stringify(invoke.Resource)).toContain('/$default/POST/api/decide');
    // the endpoint checks the caller's signature before the function runs
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'POST /api/decide', AuthorizationType: 'AWS_IAM' });
    const [, decide] = ofType('AWS::IAM::Policy').find(([id]) => id.startsWith('ApprovalsPageDecide'))!;
    const decideActions = (decide.Properties.PolicyDocument as { Statement: Statement[] }).Statement.flatMap((st) => ([] as string[]).concat(st.Action));
    expect(decideActions).toEqual(expect.arrayContaining(['states:SendTaskSuccess', 'states:SendTaskFailure', 'kms:Decrypt', 'cloudtrail:LookupEvents', 'states:GetExecutionHistory']));
    const [, decideFn] = ofType('AWS::Lambda::Function').find(([id]) => id.startsWith('ApprovalsPageDecide'))!;
    expect((decideFn.Properties.Environment as { Variables: Record<string, unknown> }).Variables.FERRY_APPROVERS_ROLE_ARN).toMatch(/AWSReservedSSO_FerryApprovers/);
    const grantedDecrypt = ofType('AWS::IAM::Policy').filter(([, p]) => JSON.stringify(p.Properties.PolicyDocument).includes('kms:Decrypt')).map(([id]) => id);
    expect(grantedDecrypt.every((id) => /ApprovalsRequestApproval|ApprovalsForgetApprovals|ApprovalsPageRole|ApprovalsPageDecide/.test(id)), grantedDecrypt.join(', ')).toBe(true);
    const sending = ofType('AWS::IAM::Policy').filter(([, p]) => JSON.stringify(p.Properties.PolicyDocument).includes('states:SendTask')).map(([id]) => id);
    expect(sending.sort(), sending.join(', ')).toEqual([expect.stringMatching(/^ApprovalsPageDecide/), expect.stringMatching(/^ApprovalsPageRole/)]);
    template.allResourcesProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    // an execution that ends, however it ends, has its tokens removed
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: ['aws.states'], 'detail-type': ['Step Functions Execution Status Change'], detail: { status: ['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED'], stateMachineArn: Match.anyValue() } },
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('ForgetApprovals'), 'Arn'] } })],
    });
  });

  it('refuses to separate duties with an approvers role whose sessions are named by whoever assumes it', () => {
    const base = cdkJson.context.ferry.environments.production;
    expect(() => parseConfig({ ...base, approvers: { ...base.approvers, roleArn: 'arn:aws:iam::123456789012:role/ferry-approvers' } })).toThrow(/approvers.roleArn: approvers.separateFromStarter needs an approvers role whose sessions AWS names after the person/);
    const sso = 'arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_FerryApprovers_0123456789abcdef';
    expect(parseConfig({ ...base, approvers: { ...base.approvers, roleArn: sso, separateFromStarter: true } }).approvers.separateFromStarter).toBe(true);
  });

  it('serves the approval page behind a Cognito user pool with MFA, whose approvers group alone may decide, linked from every notice', () => {
    template.hasResourceProperties('AWS::Cognito::UserPool', { MfaConfiguration: 'ON', AdminCreateUserConfig: { AllowAdminCreateUserOnly: true }, EnabledMfas: ['SOFTWARE_TOKEN_MFA'] });
    template.hasResourceProperties('AWS::Cognito::UserPoolGroup', { GroupName: 'approvers' });
    template.hasResourceProperties('AWS::Cognito::UserPoolClient', { GenerateSecret: false, AllowedOAuthFlows: ['code'], CallbackURLs: [Match.objectLike({ 'Fn::Join': Match.arrayWith([Match.arrayWith(['/callback'])]) })] });
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', { AccessLogSettings: Match.objectLike({ DestinationArn: Match.anyValue() }) });
    const [, page] = ofType('AWS::IAM::Policy').find(([id]) => id.startsWith('ApprovalsPageRole'))!;
    const statements = (page.Properties.PolicyDocument as { Statement: Statement[] }).Statement;
    const send = statements.find((st) => JSON.stringify(st.Action).includes('states:SendTaskSuccess'))!;
    expect(JSON.stringify(send.Resource)).toMatch(/stateMachine:ferry-production-table-copy.*stateMachine:ferry-production-doctype-copy.*stateMachine:ferry-production-online-alter/);
    // the notice links to the page
    const [, request] = ofType('AWS::Lambda::Function').find(([id]) => id.startsWith('ApprovalsRequestApproval'))!;
    expect(JSON.stringify((request.Properties.Environment as { Variables: Record<string, unknown> }).Variables.FERRY_APPROVAL_PAGE_URL)).toContain('ApprovalsPageApi');
    expect(template.toJSON().Outputs.ApprovalPageUrl).toBeDefined();
    // staging does not require MFA of its approvers, nor on its page
    const staging = synth(false, environments(cdkJson.context.ferry, 'staging')[0]!).template;
    staging.hasResourceProperties('AWS::Cognito::UserPool', { MfaConfiguration: 'OPTIONAL' });
  });

  it('alarms on what the functions really emit: the alarms\' dimensions are a set every metric is published with', () => {
    const alarms = ofType('AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    const throttle = alarms.filter((a) => a.MetricName === 'ThrottledSeconds');
    expect(throttle).toHaveLength(3);
    const lines: string[] = [];
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (lines.push(String(chunk)), true));
    try {
      for (const machine of MACHINE_NAMES) {
        progressReporter(machine, telemetry({ FERRY_ENV: 'production' }))({ migrationId: 'm1', phase: 'copy', done: '1', total: null, unit: 'rows', note: 'throttled', throttle: 'busy', waitSeconds: 5 });
      }
    } finally {
      write.mockRestore();
    }
    const emitted = lines.flatMap((l) => l.split('\n')).filter((l) => l.includes('ThrottledSeconds')).map((l) => JSON.parse(l) as Record<string, unknown> & { _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][] }[] } });
    for (const alarm of throttle) {
      const dims = alarm.Dimensions as { Name: string; Value: string }[];
      const names = dims.map((d) => d.Name).sort();
      const match = emitted.find((e) => e._aws.CloudWatchMetrics[0]!.Namespace === alarm.Namespace && e._aws.CloudWatchMetrics[0]!.Dimensions.some((set) => [...set].sort().join() === names.join()) && dims.every((d) => e[d.Name] === d.Value));
      expect(match, JSON.stringify(dims)).toBeDefined();
    }
    expect(alarms.filter((a) => a.MetricName === 'ExecutionsFailed')).toHaveLength(3);
    const waiting = alarms.filter((a) => a.MetricName === 'OldestPendingApprovalHours');
    expect(waiting.map((a) => a.Threshold)).toEqual([24]);
    expect(waiting[0]!.Dimensions).toEqual([{ Name: 'service', Value: 'ferry-production' }]);
    for (const a of alarms) expect((a.AlarmActions as unknown[]).length).toBe(1);
    template.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardName: 'ferry-production' });
  });

  it('lets the applications named in config read the flags, and only the flags', () => {
    const readers = ofType('AWS::IAM::Policy').filter(([id]) => id.startsWith('FlagReader'));
    expect(readers).toHaveLength(2);
    for (const [, p] of readers) {
      const st = (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement;
      expect(JSON.stringify(st)).toMatch(/parameter\/ferry-production\/\*\/flags/);
      expect(st.flatMap((s) => ([] as string[]).concat(s.Action)).every((a) => a.startsWith('ssm:Get'))).toBe(true);
    }
  });

  it('lets operators start, follow, stop and redrive executions, and set only the pause flag and the knobs', () => {
    const policies = ofType('AWS::IAM::Policy').filter(([id]) => id.startsWith('Operators'));
    const statements = policies.flatMap(([, p]) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
    const actions = statements.flatMap((s) => ([] as string[]).concat(s.Action));
    expect(actions.filter((a) => a.startsWith('states:')).sort()).toEqual([
      'states:DescribeExecution', 'states:DescribeStateMachine', 'states:GetExecutionHistory', 'states:ListExecutions', 'states:ListStateMachines', 'states:RedriveExecution', 'states:StartExecution', 'states:StopExecution',
    ]);
    const put = statements.filter((s) => ([] as string[]).concat(s.Action).includes('ssm:PutParameter'));
    expect(put).toHaveLength(2);
    expect(JSON.stringify(put[0]!.Resource)).toMatch(/parameter\/ferry-production\/\*\/flags\/FERRY_PAUSED"/);
    // and the live knobs, nothing else: ferry set --aws puts and takes them back
    expect([put[1]!.Action].flat().sort()).toEqual(['ssm:DeleteParameters', 'ssm:PutParameter']);
    expect(JSON.stringify(put[1]!.Resource)).toMatch(/parameter\/ferry-production\/\*\/knobs\/\*"\]/);
  });

  it('shows the console an example input per machine, valid against the schema the tasks parse with, and keeps schemas/ current', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Value: string }>;
    for (const machine of MACHINE_NAMES) {
      const [, out] = Object.entries(outputs).find(([id]) => id.toLowerCase().startsWith(machine.replace('-', '')))!;
      expect(MACHINES[machine]!.parse(JSON.parse(out.Value)).migrationId).toBeTruthy();
      expect(JSON.parse(readFileSync(new URL(`../../schemas/${machine}.schema.json`, import.meta.url), 'utf8')), `schemas/${machine}.schema.json: run npm run schemas`).toEqual(inputJsonSchema(machine));
    }
  });

  it('refuses a configuration CloudFormation or IAM would refuse, naming the field', () => {
    const base = cdkJson.context.ferry.environments.production;
    expect(() => parseConfig({ ...base, logRetentionDays: 10 })).toThrow(/"ferry".logRetentionDays: must be one of the periods CloudFormation accepts/);
    expect(() => parseConfig({ ...base, approvers: { roleArn: 'ferry-approvers' } })).toThrow(/"ferry".approvers.roleArn: must be the ARN of an IAM role/);
    expect(() => environments(cdkJson.context.ferry, 'qa')).toThrow(/no environment "qa"; choose one of staging, production/);
    expect(() => environments({ environments: { Prod: base } })).toThrow(/environments.Prod: environment names are lowercase/);
  });

  it('passes the deployment\'s caps on the knobs that switch protections off to every function that validates an input or shows the knobs', () => {
    const capsOf = (t: Template) =>
      Object.fromEntries(
        Object.entries(t.findResources('AWS::Lambda::Function'))
          .filter(([id]) => id.startsWith('Workers') || (id.startsWith('ApprovalsPage') && !id.startsWith('ApprovalsPageDecide')))
          .map(([id, f]) => [id, Object.fromEntries(Object.entries((f.Properties.Environment as { Variables: Record<string, string> }).Variables).filter(([k]) => k.startsWith('FERRY_CAP_')))]),
      );
    const defaults = capsOf(template);
    expect(Object.keys(defaults).length).toBe(WORKERS.length + 1);
    for (const [id, caps] of Object.entries(defaults)) expect(caps, id).toEqual({ FERRY_CAP_THROTTLE_MAX_THREADS_RUNNING: '200', FERRY_CAP_CLEANUP_BATCH_ROWS: '50000' });
    const base = cdkJson.context.ferry.environments.production;
    const raised = capsOf(synth(false, { ...production, config: parseConfig({ ...base, caps: { throttle: { maxThreadsRunning: 400 }, cleanup: { batchRows: 10_000 } } }) }).template);
    for (const [id, caps] of Object.entries(raised)) expect(caps, id).toEqual({ FERRY_CAP_THROTTLE_MAX_THREADS_RUNNING: '400', FERRY_CAP_CLEANUP_BATCH_ROWS: '10000' });
    expect(() => parseConfig({ ...base, caps: { cleanup: { batchRows: 2_000_000 } } })).toThrow(/"ferry".caps.cleanup.batchRows: at most 1000000/);
    expect(() => parseConfig({ ...base, caps: { throttle: { maxThreads: 10 } } })).toThrow(/"ferry".caps.throttle/);
  });

  it('refuses an approval page without MFA where the approvers require it, naming both fields and the fix', () => {
    const base = cdkJson.context.ferry.environments.production;
    const approvers = { roleArn: base.approvers.roleArn };
    expect(() => parseConfig({ ...base, approvers: { ...approvers, requireMfa: true, page: { mfa: 'optional' } } })).toThrow(
      /"ferry".approvers.page.mfa: "optional" contradicts approvers.requireMfa: true .*: leave approvers.page.mfa out \(or "required"\), or set approvers.requireMfa to false/,
    );
    // requireMfa is true unless set otherwise
    expect(() => parseConfig({ ...base, approvers: { ...approvers, page: { mfa: 'optional' } } })).toThrow(/approvers.page.mfa: "optional" contradicts approvers.requireMfa: true/);
    expect(parseConfig({ ...base, approvers: { ...approvers, requireMfa: false, page: { mfa: 'optional' } } }).approvers.page.mfa).toBe('optional');
    expect(parseConfig({ ...base, approvers: { ...approvers, requireMfa: true, page: { mfa: 'required' } } }).approvers.page.mfa).toBe('required');
  });

  it.each(['production', 'staging'])('passes the cdk-nag AwsSolutions checks with every finding acknowledged for a reason (%s)', (name) => {
    const { app } = synth(true, environments(cdkJson.context.ferry, name)[0]!);
    expect(() => app.synth()).not.toThrow();
  });
});
