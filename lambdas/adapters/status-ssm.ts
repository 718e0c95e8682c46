import { PutParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import type { StatusKind, StatusReports } from '../core/ports/status.ts';

/** Status reports as SSM String parameters under the deployment's root (see StatusReports). */
export class SsmStatusReports implements StatusReports {
  constructor(private readonly ssm: SSMClient, private readonly root: string) {}

  async put(migrationId: string, kind: StatusKind, text: string): Promise<void> {
    await this.ssm.send(new PutParameterCommand({ Name: `${this.root}/${migrationId}/status/${kind}`, Value: text, Type: 'String', Overwrite: true }));
  }
}
