import { ListStateMachinesCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { readFileSync } from 'node:fs';
import { beforeEach, describe, expect, it } from 'vitest';
import { executionName, startExecution } from '../../../bin/cli/aws.ts';

const sfn = mockClient(SFNClient);
const client = new SFNClient({ region: 'eu-west-1' });
const example = JSON.parse(readFileSync(new URL('../../../examples/csmh-extended.json', import.meta.url), 'utf8'));
const arn = 'arn:aws:states:eu-west-1:123456789012:stateMachine:ferry-table-copy';

describe('ferry start', () => {
  beforeEach(() => sfn.reset());

  it('finds ferry-<machine> and starts it with the input, named after the migration', async () => {
    sfn.on(ListStateMachinesCommand).resolvesOnce({ stateMachines: [{ name: 'other', stateMachineArn: 'x', type: 'STANDARD', creationDate: new Date() }], nextToken: 'n' }).resolvesOnce({
      stateMachines: [{ name: 'ferry-table-copy', stateMachineArn: arn, type: 'STANDARD', creationDate: new Date() }],
    });
    sfn.on(StartExecutionCommand).resolves({ executionArn: `${arn.replace('stateMachine', 'execution')}:x`, startDate: new Date() });
    const started = await startExecution(client, 'table-copy', example);
    const input = sfn.commandCalls(StartExecutionCommand)[0]!.args[0].input;
    expect(input.stateMachineArn).toBe(arn);
    expect(input.name).toMatch(/^csmh-extended-\d{4}-\d\d-\d\dT/);
    expect(JSON.parse(input.input!)).toEqual(example);
    expect(started.name).toBe(input.name);
  });

  it('refuses bad input before calling AWS', async () => {
    await expect(startExecution(client, 'table-copy', { ...example, idOffset: 5 })).rejects.toMatchObject({ name: 'InvalidInput', field: 'idOffset' });
    expect(sfn.calls()).toHaveLength(0);
  });

  it('keeps execution names within 80 characters', () => {
    expect(executionName('x'.repeat(80)).length).toBe(80);
    expect(executionName('m', new Date('2026-01-02T03:04:05.678Z'))).toBe('m-2026-01-02T03-04-05-678Z');
  });
});
