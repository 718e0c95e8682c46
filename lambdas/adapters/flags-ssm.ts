import { DeleteParametersCommand, GetParameterCommand, GetParametersByPathCommand, ParameterNotFound, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { flagParameterName, type FlagStore, type ParameterKind } from '../core/ports/flags.ts';
import { TransientError } from '../core/errors.ts';

/**
 * Flags as SSM String parameters under `<root>/<migrationId>/flags/` (root: the deployment's,
 * `/ferry` by default); knobs likewise under `<root>/<migrationId>/knobs/`.
 */
export class SsmFlagStore implements FlagStore {
  constructor(
    private readonly client: SSMClient = new SSMClient({}),
    private readonly root = '/ferry',
    private readonly kind: ParameterKind = 'flags',
  ) {}

  private name(migrationId: string, name: string): string {
    return flagParameterName(migrationId, name, this.root, this.kind);
  }

  async unset(migrationId: string, names: readonly string[]): Promise<void> {
    // DeleteParameters takes at most 10 names a call; names it does not find are no error.
    for (let i = 0; i < names.length; i += 10) {
      await this.client.send(new DeleteParametersCommand({ Names: names.slice(i, i + 10).map((n) => this.name(migrationId, n)) })).catch((err) => {
        throw asFerryError(err);
      });
    }
  }

  async get(migrationId: string, name: string): Promise<string | undefined> {
    try {
      const out = await this.client.send(new GetParameterCommand({ Name: this.name(migrationId, name) }));
      return out.Parameter?.Value;
    } catch (err) {
      if (err instanceof ParameterNotFound) return undefined;
      throw asFerryError(err);
    }
  }

  async set(migrationId: string, values: Readonly<Record<string, string>>): Promise<void> {
    for (const [name, value] of Object.entries(values)) {
      try {
        await this.client.send(new PutParameterCommand({ Name: this.name(migrationId, name), Value: value, Type: 'String', Overwrite: true }));
      } catch (err) {
        throw asFerryError(err);
      }
    }
  }

  async list(migrationId: string): Promise<Record<string, string>> {
    const prefix = this.name(migrationId, '');
    const out: Record<string, string> = {};
    let NextToken: string | undefined;
    do {
      const page = await this.client.send(new GetParametersByPathCommand({ Path: prefix.replace(/\/$/, ''), Recursive: false, NextToken })).catch((err) => {
        throw asFerryError(err);
      });
      for (const p of page.Parameters ?? []) if (p.Name && p.Value !== undefined) out[p.Name.slice(prefix.length)] = p.Value;
      NextToken = page.NextToken;
    } while (NextToken);
    return out;
  }
}

/** Throttling from SSM is worth a retry; anything else is not. */
export function asFerryError(err: unknown): Error {
  const name = (err as { name?: string }).name ?? '';
  if (['ThrottlingException', 'TooManyUpdates', 'InternalServerError'].includes(name)) {
    return new TransientError(`SSM: ${name}: ${(err as Error).message}`, { cause: err });
  }
  return err as Error;
}
