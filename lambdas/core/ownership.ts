import { MigrationBusy, OwnershipLost } from './errors.ts';

/**
 * Which execution runs a migration. The checkpoint records its owner; a new execution takes the
 * migration over when there is none, when it is the owner, when the owner handed over to it
 * (continue-as-new), or when the owner is no longer running (it failed, was stopped, or its
 * process was killed). Otherwise it is refused before it writes anything.
 */
export async function claimOwnership(
  migrationId: string,
  owner: string | null | undefined,
  me: string,
  handedOverBy: string | undefined,
  isRunning: (executionId: string) => Promise<boolean>,
): Promise<void> {
  if (!owner || owner === me || owner === handedOverBy) return;
  if (!(await isRunning(owner))) return;
  throw new MigrationBusy(
    `execution ${owner} is running migration "${migrationId}"; a second one would race it over the same data. ` +
      'Wait for it, or stop it, then start again: the new execution resumes from the checkpoint.',
  );
}

/**
 * A task of an execution that no longer owns the migration (another took it over after this one
 * was stopped) stops before it reads or writes anything.
 */
export function refuseIfReplaced(migrationId: string, owner: string | null | undefined, execution: string | undefined): void {
  if (execution === undefined || !owner || owner === execution) return;
  throw new OwnershipLost(`execution ${owner} has taken migration "${migrationId}" over; this task of ${execution} stops without writing anything`);
}
