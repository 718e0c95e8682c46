import { GetParameterCommand, ParameterAlreadyExists, ParameterNotFound, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { InvalidInput, TransientError } from '../core/errors.ts';
import { migrationId as migrationIdSchema } from '../core/input-parts.ts';
import { claimFromJson } from '../core/migration-claims.ts';
import type { MigrationClaim, MigrationClaims } from '../core/ports/claims.ts';
import { asFerryError } from './flags-ssm.ts';

/** Largest value an SSM parameter holds (an advanced one; a standard one holds 4 KB). */
const MAX_VALUE_BYTES = 8192;

/**
 * `<root>/<migrationId>/owner`: a String parameter created without overwrite, so SSM itself
 * settles which of two executions claims an id first. Deleting the parameter frees the id.
 */
export class SsmMigrationClaims implements MigrationClaims {
  constructor(
    private readonly client: SSMClient = new SSMClient({}),
    private readonly root = '/ferry',
  ) {}

  /** The claim's parameter; an id that is not one never names a parameter. */
  nameOf(migrationId: string): string {
    const parsed = migrationIdSchema.safeParse(migrationId);
    if (!parsed.success) throw new InvalidInput('migrationId', parsed.error.issues[0]!.message);
    return `${this.root}/${migrationId}/owner`;
  }

  async ownerOf(migrationId: string): Promise<MigrationClaim | null> {
    const name = this.nameOf(migrationId);
    try {
      const out = await this.client.send(new GetParameterCommand({ Name: name }));
      return out.Parameter?.Value === undefined ? null : claimFromJson(out.Parameter.Value, `SSM parameter ${name}`);
    } catch (err) {
      if (err instanceof ParameterNotFound) return null;
      throw asFerryError(err);
    }
  }

  async claim(migrationId: string, claim: MigrationClaim): Promise<MigrationClaim> {
    const name = this.nameOf(migrationId);
    const value = JSON.stringify(claim);
    if (Buffer.byteLength(value) > MAX_VALUE_BYTES) {
      throw new InvalidInput('docTypes', `what migration ${migrationId} moves takes ${Buffer.byteLength(value)} bytes to record, more than the ${MAX_VALUE_BYTES} an SSM parameter holds; split the doc types over several migrations`);
    }
    try {
      // Intelligent-Tiering: a standard parameter, an advanced one only when the value passes 4 KB (a long list of doc types).
      await this.client.send(new PutParameterCommand({ Name: name, Value: value, Type: 'String', Overwrite: false, Tier: 'Intelligent-Tiering', Description: 'ferry: the input this migration id belongs to' }));
      return claim;
    } catch (err) {
      if (!(err instanceof ParameterAlreadyExists)) throw asFerryError(err);
    }
    const owner = await this.ownerOf(migrationId);
    if (!owner) throw new TransientError(`SSM parameter ${name} was deleted while this execution claimed migration id ${migrationId}; a retry claims it again`);
    return owner;
  }
}
