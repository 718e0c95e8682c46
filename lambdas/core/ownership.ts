import { MigrationBusy, OwnershipLost, TransientError } from './errors.ts';
import type { ExecutionRegistry } from './ports/task-deps.ts';

/**
 * Which execution runs a migration. The checkpoint records its owner; a new execution takes the
 * migration over when there is none, when it is the owner, when the owner really handed over to
 * it (its continue-as-new step started this very execution: a `handedOverBy` typed into an input
 * proves nothing), or when the owner is no longer running (it failed, was stopped, or its process
 * was killed). Otherwise it is refused before it writes anything.
 */
export async function claimOwnership(migrationId: string, owner: string | null | undefined, me: string, handedOverBy: string | undefined, executions: ExecutionRegistry): Promise<void> {
  if (!owner || owner === me) return;
  if (owner === handedOverBy && (await executions.handedOver(owner, me))) return;
  if (!(await executions.isRunning(owner))) return;
  if (owner === handedOverBy) {
    // Its continue-as-new step may not be recorded yet: asked again after a retry's wait, a real hand-over shows.
    throw new TransientError(
      `the input says execution ${owner} handed migration "${migrationId}" over to this one, but its history does not show it starting ${me} (yet). ` +
        'A real hand-over shows within seconds; an input that names a running execution by hand is refused when the retries are spent.',
    );
  }
  throw new MigrationBusy(
    `execution ${owner}${executions.describe ? ` (${executions.describe(owner)})` : ''} is running migration "${migrationId}"; a second one would race it over the same data. ` +
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
