import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeleteParametersCommand, GetParameterCommand, GetParametersByPathCommand, ParameterNotFound, PutParameterCommand, SSMClient, ThrottlingException } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { FileFlagStore } from '../../../lambdas/adapters/flags.ts';
import { flagParameterName, type FlagStore } from '../../../lambdas/core/ports/flags.ts';
import { SsmFlagStore } from '../../../lambdas/adapters/flags-ssm.ts';
import { tempDir } from '../../helpers/cli.ts';

// Both adapters answer to the same port; this line fails to compile if either drifts from it.
const ports: FlagStore[] = [new FileFlagStore(tempDir()), new SsmFlagStore(new SSMClient({ region: 'us-east-1' }))];

describe('flag names', () => {
  it('live under /ferry/<migrationId>/flags/', () => {
    expect(flagParameterName('csmh-extended', 'ENABLE_CSMH_EXTENDED')).toBe('/ferry/csmh-extended/flags/ENABLE_CSMH_EXTENDED');
    expect(ports).toHaveLength(2);
  });
});

describe('FileFlagStore', () => {
  it('keeps full parameter names in <state-dir>/flags.json and lists one migration by short name', async () => {
    const dir = tempDir();
    const store = new FileFlagStore(dir);
    await store.set('a', { X: 'true', Y: '1' });
    await store.set('b', { X: 'false' });
    await store.set('a', { X: 'false' });
    expect(JSON.parse(readFileSync(join(dir, 'flags.json'), 'utf8'))).toEqual({
      '/ferry/a/flags/X': 'false',
      '/ferry/a/flags/Y': '1',
      '/ferry/b/flags/X': 'false',
    });
    expect(await store.list('a')).toEqual({ X: 'false', Y: '1' });
    expect(await store.get('b', 'X')).toBe('false');
    expect(await store.get('b', 'Y')).toBeUndefined();
  });

  it('reads an absent file as no flags and writes nothing for an empty set', async () => {
    const dir = tempDir();
    const store = new FileFlagStore(dir);
    expect(await store.list('a')).toEqual({});
    await store.set('a', {});
    expect(() => readFileSync(join(dir, 'flags.json'))).toThrow(/ENOENT/);
  });
});

describe('SsmFlagStore', () => {
  const ssm = mockClient(SSMClient);
  beforeEach(() => ssm.reset());
  const store = new SsmFlagStore(new SSMClient({ region: 'us-east-1' }));

  it('writes each flag as an overwritten String parameter', async () => {
    ssm.on(PutParameterCommand).resolves({ Version: 2 });
    await store.set('csmh-extended', { ENABLE_CSMH_EXTENDED: 'true' });
    expect(ssm.commandCalls(PutParameterCommand)[0]!.args[0].input).toEqual({
      Name: '/ferry/csmh-extended/flags/ENABLE_CSMH_EXTENDED',
      Value: 'true',
      Type: 'String',
      Overwrite: true,
    });
  });

  it('reads a missing parameter as unset', async () => {
    ssm.on(GetParameterCommand).rejects(new ParameterNotFound({ message: 'nope', $metadata: {} }));
    expect(await store.get('m', 'FERRY_PAUSED')).toBeUndefined();
  });

  it('lists every page under the migration path', async () => {
    ssm
      .on(GetParametersByPathCommand, { Path: '/ferry/m/flags', NextToken: undefined })
      .resolves({ Parameters: [{ Name: '/ferry/m/flags/A', Value: '1' }], NextToken: 't' })
      .on(GetParametersByPathCommand, { Path: '/ferry/m/flags', NextToken: 't' })
      .resolves({ Parameters: [{ Name: '/ferry/m/flags/B', Value: '2' }] });
    expect(await store.list('m')).toEqual({ A: '1', B: '2' });
  });

  it('keeps knobs beside the flags, under /ferry/<migrationId>/knobs/, and takes them back ten names a call', async () => {
    const knobs = new SsmFlagStore(new SSMClient({ region: 'us-east-1' }), '/ferry-staging', 'knobs');
    ssm.on(PutParameterCommand).resolves({ Version: 1 });
    ssm.on(GetParametersByPathCommand, { Path: '/ferry-staging/m/knobs' }).resolves({ Parameters: [{ Name: '/ferry-staging/m/knobs/chunk.maxRows', Value: '100' }] });
    ssm.on(DeleteParametersCommand).resolves({});
    await knobs.set('m', { 'chunk.maxRows': '100' });
    expect(ssm.commandCalls(PutParameterCommand)[0]!.args[0].input.Name).toBe('/ferry-staging/m/knobs/chunk.maxRows');
    expect(await knobs.list('m')).toEqual({ 'chunk.maxRows': '100' });
    await knobs.unset('m', Array.from({ length: 11 }, (_, i) => `k${i}`));
    const deletes = ssm.commandCalls(DeleteParametersCommand).map((c) => c.args[0].input.Names!);
    expect(deletes.map((n) => n.length)).toEqual([10, 1]);
    expect(deletes[1]).toEqual(['/ferry-staging/m/knobs/k10']);
  });

  it('turns SSM throttling into the retryable TransientError the ASL retries', async () => {
    ssm.on(PutParameterCommand).rejects(new ThrottlingException({ message: 'Rate exceeded', Message: 'Rate exceeded', $metadata: {} }));
    await expect(store.set('m', { A: '1' })).rejects.toMatchObject({ name: 'TransientError', retryable: true });
  });
});
