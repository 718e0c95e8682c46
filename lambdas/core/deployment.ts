/**
 * One deployment of ferry in an account and region: `ferry`, or `ferry-<env>` when a team runs
 * several (staging, production) side by side. Every name a deployment owns derives from it: its
 * state machines (`<name>-table-copy`), log groups, dashboard, and its SSM namespace (`/<name>/…`:
 * flags and approval tokens), so two deployments never share a name or a parameter.
 */
export interface Deployment {
  /** The environment's name, or null for the single, unnamed deployment. */
  readonly env: string | null;
  readonly name: string;
  /** Where its flags (`<root>/<migrationId>/flags/<FLAG>`) and approval tokens live. */
  readonly ssmRoot: string;
}

const ENV_NAME = /^[a-z][a-z0-9-]{0,19}$/;

/** The deployment of environment `env` (none: the single, unnamed one). */
export function deployment(env?: string | null): Deployment {
  if (env !== undefined && env !== null && env !== '' && !ENV_NAME.test(env)) {
    throw new Error(`environment "${env}": use lowercase letters, digits and hyphens, starting with a letter (at most 20), e.g. staging`);
  }
  const name = env ? `ferry-${env}` : 'ferry';
  return { env: env || null, name, ssmRoot: `/${name}` };
}

/** The deployment a Lambda belongs to, from the environment the stack gives it. */
export function deploymentFromEnv(env: NodeJS.ProcessEnv = process.env): Deployment {
  return deployment(env.FERRY_ENV);
}

/** What a deployment's functions are told of it (nothing for the unnamed one). */
export function deploymentVariables(d: Deployment): Record<string, string> {
  return d.env ? { FERRY_ENV: d.env } : {};
}

export const stateMachineName = (d: Deployment, machine: string) => `${d.name}-${machine}`;

/** The name of a machine's plan function, which `ferry plan --aws` invokes. */
export const planFunctionName = (d: Deployment, machine: string) => `${stateMachineName(d, machine)}-plan`;

export const ENVIRONMENT_NAME = ENV_NAME;

/** The SSM parameter holding the address of the deployment's decision endpoint (`ferry approve --aws` reads it). */
export function decideUrlParameter(ssmRoot: string): string {
  return `${ssmRoot}/page/decide-url`;
}
