import { randomUUID } from 'node:crypto';
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidInput, TransientError } from '../core/errors.ts';
import { migrationId as migrationIdSchema } from '../core/input-parts.ts';
import { claimFromJson } from '../core/migration-claims.ts';
import type { MigrationClaim, MigrationClaims } from '../core/ports/claims.ts';

/**
 * `<state-dir>/owners/<migrationId>.json`, written whole to a file of its own and then linked to
 * its name: the link fails when the name exists, so of two runs claiming at once exactly one
 * wins, and a reader never sees half a claim. Deleting the file frees the id.
 */
export class FileMigrationClaims implements MigrationClaims {
  readonly dir: string;
  constructor(stateDir: string) {
    this.dir = join(stateDir, 'owners');
  }

  /** The claim's file; an id that is not one (`../` and the like) never names a file. */
  pathOf(migrationId: string): string {
    const parsed = migrationIdSchema.safeParse(migrationId);
    if (!parsed.success) throw new InvalidInput('migrationId', parsed.error.issues[0]!.message);
    return join(this.dir, `${migrationId}.json`);
  }

  async ownerOf(migrationId: string): Promise<MigrationClaim | null> {
    const path = this.pathOf(migrationId);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    return claimFromJson(text, path);
  }

  async claim(migrationId: string, claim: MigrationClaim): Promise<MigrationClaim> {
    const path = this.pathOf(migrationId);
    await mkdir(this.dir, { recursive: true });
    const tmp = `${path}.${process.pid}.${randomUUID()}.tmp`;
    await writeFile(tmp, JSON.stringify(claim, null, 2) + '\n');
    let won = false;
    try {
      await link(tmp, path);
      won = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      await rm(tmp, { force: true });
    }
    if (won) return claim;
    const owner = await this.ownerOf(migrationId);
    if (!owner) throw new TransientError(`the claim of migration id ${migrationId} at ${path} was deleted while this run claimed it; run again`);
    return owner;
  }
}
