/** The CDK app named in cdk.json: the stack from the `ferry` context, checked by cdk-nag's AwsSolutions rules. */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { parseConfig } from '../infra/config.ts';
import { FerryStack } from '../infra/ferry-stack.ts';

const app = new App();
new FerryStack(app, 'Ferry', { config: parseConfig(app.node.tryGetContext('ferry')) });
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();
