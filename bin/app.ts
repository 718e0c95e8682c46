import { App, Aspects, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { parseConfig } from '../infra/config.ts';
import { FerryStack } from '../infra/ferry-stack.ts';
import { acknowledgeFindings } from '../infra/nag.ts';

const app = new App();
const stack = new FerryStack(app, 'Ferry', { config: parseConfig(app.node.tryGetContext('ferry')) });
acknowledgeFindings(stack);
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
void Aspects;
app.synth();
