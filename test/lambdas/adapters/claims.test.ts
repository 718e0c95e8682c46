import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { GetParameterCommand, ParameterAlreadyExists, ParameterNotFound, PutParameterCommand, SSMClient, ThrottlingException } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { FileMigrationClaims } from '../../../lambdas/adapters/claims.ts';
import { SsmMigrationClaims } from '../../../lambdas/adapters/claims-ssm.ts';
import type { MigrationClaim, MigrationClaims } from '../../../lambdas/core/ports/claims.ts';
import { tempDir } from '../../helpers/cli.ts';

// Both adapters answer to the same port; this line fails to compile if either drifts from it.
const ports: MigrationClaims[] = [new FileMigrationClaims(tempDir()), new SsmMigrationClaims(new SSMClient({ region: 'us-east-1' }))];

const claimOf = (table: string, execution = 'exec-1'): MigrationClaim => ({
  binding: { machine: 'table-copy', source: { connection: 'edxapp', database: 'edxapp', table: 'history' }, target: { connection: 'csmh', database: 'csmh', table } },
  claimedAt: '2026-01-02T03:04:05.000Z',
  execution,
});

describe('FileMigrationClaims', () => {
  it('keeps the first claim of an id in <state-dir>/owners/<id>.json and answers it to every later claim', async () => {
    const dir = tempDir();
    const claims = new FileMigrationClaims(dir);
    expect(ports).toHaveLength(2);
    expect(await claims.ownerOf('m1')).toBeNull();
    expect(await claims.claim('m1', claimOf('t1'))).toEqual(claimOf('t1'));
    expect(await claims.claim('m1', claimOf('t2', 'exec-2'))).toEqual(claimOf('t1'));
    expect(await claims.ownerOf('m1')).toEqual(claimOf('t1'));
    expect(JSON.parse(readFileSync(join(dir, 'owners', 'm1.json'), 'utf8'))).toEqual(claimOf('t1'));
    expect(await claims.claim('m2', claimOf('t2'))).toEqual(claimOf('t2'));
  });

  it('lets exactly one of many claims made at once win, from separate stores on one state dir', async () => {
    const dir = tempDir();
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => new FileMigrationClaims(dir).claim('race', claimOf(`t${i}`, `exec-${i}`))));
    const winner = answers[0]!;
    expect(answers.every((a) => JSON.stringify(a) === JSON.stringify(winner))).toBe(true);
    expect(await new FileMigrationClaims(dir).ownerOf('race')).toEqual(winner);
  });

  it('never names a file with an id that is not one, and refuses a file that holds no claim, naming it', async () => {
    const dir = tempDir();
    const claims = new FileMigrationClaims(dir);
    await expect(claims.claim('../x', claimOf('t'))).rejects.toMatchObject({ name: 'InvalidInput', field: 'migrationId' });
    await expect(claims.ownerOf('a/b')).rejects.toMatchObject({ name: 'InvalidInput' });
    mkdirSync(join(dir, 'owners'), { recursive: true });
    writeFileSync(join(dir, 'owners', 'bad.json'), '{"binding": 1}');
    await expect(claims.ownerOf('bad')).rejects.toMatchObject({ name: 'InvalidInput', message: expect.stringContaining(join(dir, 'owners', 'bad.json')) });
  });
});

describe('SsmMigrationClaims', () => {
  const ssm = mockClient(SSMClient);
  beforeEach(() => ssm.reset());
  const claims = new SsmMigrationClaims(new SSMClient({ region: 'us-east-1' }), '/ferry-production');

  it('creates <root>/<id>/owner without overwrite, holding the claim as JSON', async () => {
    ssm.on(PutParameterCommand).resolves({ Version: 1 });
    expect(await claims.claim('m1', claimOf('t1'))).toEqual(claimOf('t1'));
    const put = ssm.commandCalls(PutParameterCommand)[0]!.args[0].input;
    expect(put).toMatchObject({ Name: '/ferry-production/m1/owner', Type: 'String', Overwrite: false });
    expect(JSON.parse(put.Value!)).toEqual(claimOf('t1'));
  });

  it('answers the claim already there when the parameter exists, overwriting nothing', async () => {
    ssm.on(PutParameterCommand).rejects(new ParameterAlreadyExists({ message: 'exists', $metadata: {} }));
    ssm.on(GetParameterCommand, { Name: '/ferry-production/m1/owner' }).resolves({ Parameter: { Value: JSON.stringify(claimOf('t1')) } });
    expect(await claims.claim('m1', claimOf('t2', 'exec-2'))).toEqual(claimOf('t1'));
    expect(ssm.commandCalls(PutParameterCommand)).toHaveLength(1);
  });

  it('reads no owner from a missing parameter; a throttle is a TransientError; a parameter deleted between the two calls is one too', async () => {
    ssm.on(GetParameterCommand).rejects(new ParameterNotFound({ message: 'nope', $metadata: {} }));
    expect(await claims.ownerOf('m1')).toBeNull();
    ssm.on(PutParameterCommand).rejects(new ParameterAlreadyExists({ message: 'exists', $metadata: {} }));
    await expect(claims.claim('m1', claimOf('t1'))).rejects.toMatchObject({ name: 'TransientError' });
    ssm.on(PutParameterCommand).rejects(new ThrottlingException({ message: 'Rate exceeded', Message: 'Rate exceeded', $metadata: {} }));
    await expect(claims.claim('m1', claimOf('t1'))).rejects.toMatchObject({ name: 'TransientError' });
  });

  it('never names a parameter with an id that is not one', async () => {
    await expect(claims.ownerOf('../flags')).rejects.toMatchObject({ name: 'InvalidInput', field: 'migrationId' });
    expect(ssm.calls()).toHaveLength(0);
  });
});
