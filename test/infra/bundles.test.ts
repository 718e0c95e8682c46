import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { lambdaEntry, WORKERS } from '../../infra/workers.ts';

/**
 * The Lambda code as NodejsFunction bundles it (esbuild, CommonJS, node22, the AWS SDK left to the
 * runtime): every handler the stack names exists, and a handler runs far enough to refuse bad input.
 */
describe('Lambda bundles', () => {
  const entries = [...new Set(WORKERS.map((w) => w.machine))].map((machine) => ({ machine, file: lambdaEntry(`${machine}/lambda.ts`) }));

  it.each(entries)('$machine bundles, and exports every handler the stack names', async ({ machine, file }) => {
    // Inside the project, so the bundle finds the AWS SDK in node_modules as the Lambda runtime provides it.
    const outfile = fileURLToPath(new URL(`../../node_modules/.cache/ferry-test-bundles/${machine}-${process.pid}.js`, import.meta.url));
    await build({ entryPoints: [file], bundle: true, platform: 'node', format: 'cjs', target: 'node22', outfile, external: ['@aws-sdk/*'], logLevel: 'silent' });
    const bundle = createRequire(import.meta.url)(outfile) as Record<string, (event: unknown, context?: unknown) => Promise<unknown>>;
    for (const w of WORKERS.filter((x) => x.machine === machine)) expect(typeof bundle[w.handler], w.handler).toBe('function');
    process.env.FERRY_CONNECTIONS = JSON.stringify({ mysql: {}, couch: {} });
    await expect(bundle.preflight!({ migration: { migrationId: 'x' } }, { getRemainingTimeInMillis: () => 900_000 })).rejects.toMatchObject({ name: 'InvalidInput' });
  });

  it.each(['request-approval', 'watch-approvals', 'forget-approvals'])('approvals/%s bundles and exports its handler', async (name) => {
    const outfile = fileURLToPath(new URL(`../../node_modules/.cache/ferry-test-bundles/${name}-${process.pid}.js`, import.meta.url));
    await build({ entryPoints: [lambdaEntry(`approvals/${name}.ts`)], bundle: true, platform: 'node', format: 'cjs', target: 'node22', outfile, external: ['@aws-sdk/*'], logLevel: 'silent' });
    const bundle = createRequire(import.meta.url)(outfile) as Record<string, unknown>;
    expect(typeof bundle.handler).toBe('function');
  });
});
