import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import { stateMachineName, type Deployment } from '../lambdas/core/deployment.ts';
import { aslText, functionPlaceholders } from '../statemachines/asl.ts';
import { acknowledgeOnPolicy } from './workers.ts';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { FerryFunction } from './workers.ts';

export interface MigrationStateMachineProps {
  readonly machine: 'table-copy' | 'doctype-copy' | 'online-alter';
  readonly deployment: Deployment;
  /** Functions by placeholder name; every placeholder of the ASL must be here. */
  readonly functions: Readonly<Record<string, FerryFunction>>;
  readonly logRetentionDays: number;
}

/**
 * One of the ASL files deployed as `<deployment>-<machine>` (`ferry-table-copy`): inlined (so the template shows it), its
 * placeholders bound to the stack's functions, every state logged, traced, and allowed to invoke
 * only its own functions and to start a fresh execution of itself (continue-as-new).
 */
export class MigrationStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly machine: MigrationStateMachineProps['machine'];
  readonly name: string;
  readonly arn: string;

  constructor(scope: Construct, id: string, props: MigrationStateMachineProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const definition = aslText(props.machine);
    const substitutions: Record<string, string> = {};
    const used: FerryFunction[] = [];
    for (const name of functionPlaceholders(definition)) {
      const f = props.functions[name];
      if (!f) throw new Error(`statemachines/${props.machine}.asl.json uses \${${name}FunctionArn}, which the stack does not define`);
      substitutions[`${name}FunctionArn`] = f.fn.functionArn;
      used.push(f);
    }
    this.machine = props.machine;
    this.name = stateMachineName(props.deployment, props.machine);
    // Built from the name, not taken from the resource: the role below cannot depend on the machine it serves.
    this.arn = `arn:${stack.partition}:states:${stack.region}:${stack.account}:stateMachine:${this.name}`;
    // Named after the deployment, so staging and production never share it; kept when the stack is
    // updated or deleted, but removed when the create that made it rolls back, so a failed first
    // deploy does not leave a name the next one trips over.
    const logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: `/aws/vendedlogs/states/${this.name}`,
      retention: props.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    });
    const role = new iam.Role(this, 'Role', { assumedBy: new iam.ServicePrincipal('states.amazonaws.com'), description: `ferry: runs ${this.name}` });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineName: this.name,
      definitionBody: sfn.DefinitionBody.fromString(definition),
      definitionSubstitutions: substitutions,
      role,
      tracingEnabled: true,
      // Every state's events, without their input and output: callback tokens and migration inputs stay out of the logs.
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: false },
    });
    // The ASL calls each function by its unqualified ARN: no version or alias wildcard is needed.
    role.addToPolicy(new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: used.map((f) => f.fn.functionArn) }));
    acknowledgeOnPolicy(role, 'IAM5[Resource::*]', 'Step Functions log delivery (logs:*LogDelivery, DescribeLogGroups, PutResourcePolicy) and X-Ray tracing have no resource-level permissions.');
    role.addToPolicy(new iam.PolicyStatement({ actions: ['states:StartExecution'], resources: [this.arn] }));
    if (definition.includes('"arn:aws:states:::states:startExecution.sync:2"')) {
      // Waiting for an execution it started: Step Functions reads it, stops it when the waiting branch is cancelled, and learns of its end through an EventBridge rule it manages.
      const executions = `arn:${stack.partition}:states:${stack.region}:${stack.account}:execution:${this.name}:*`;
      role.addToPolicy(new iam.PolicyStatement({ actions: ['states:DescribeExecution', 'states:StopExecution'], resources: [executions] }));
      role.addToPolicy(
        new iam.PolicyStatement({
          actions: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'],
          resources: [`arn:${stack.partition}:events:${stack.region}:${stack.account}:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule`],
        }),
      );
      acknowledgeOnPolicy(role, `IAM5[Resource::${executions.replace(stack.partition, '<AWS::Partition>')}]`, 'The executions it starts and waits for are named by Step Functions at run time.');
    }
  }
}
