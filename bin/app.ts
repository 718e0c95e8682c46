/**
 * The CDK app named in cdk.json: one stack per environment of the `ferry` context (`-c env=staging`
 * builds only that one), each checked by cdk-nag's AwsSolutions rules.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { environments } from '../infra/config.ts';
import { FerryStack, stackId } from '../infra/ferry-stack.ts';

const app = new App();
const chosen = app.node.tryGetContext('env') as string | undefined;
for (const e of environments(app.node.tryGetContext('ferry'), chosen)) {
  new FerryStack(app, stackId(e.deployment), { config: e.config, deployment: e.deployment });
}
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();
