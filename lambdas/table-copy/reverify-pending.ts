import { DescribeExecutionCommand, ListExecutionsCommand, type SFNClient } from '@aws-sdk/client-sfn';
import type { TaskDeps } from '../core/ports/task-deps.ts';
import type { TaskEvent } from './open-migration.ts';
import { reverify } from './reverify.ts';

/** The migration input an execution was started with (a continuation carries it as `migration`). */
function migrationOf(input: string | undefined): { migration: unknown; migrationId: string | undefined } {
  try {
    const parsed = JSON.parse(input ?? '{}') as { migration?: { migrationId?: string }; migrationId?: string };
    const migration = parsed.migration ?? parsed;
    return { migration, migrationId: (migration as { migrationId?: string }).migrationId };
  } catch {
    return { migration: undefined, migrationId: undefined };
  }
}

/**
 * On AWS, on a schedule: the re-verification beside every pending cut-over approval of this
 * deployment's table-copy machine. The pending approvals are known by their parameters' names (no
 * token is read); the execution that waits, by the running executions' inputs. Each is re-verified
 * for that execution (see reverify.ts), one after another within the invocation's budget.
 */
export async function reverifyPending(
  deps: TaskDeps,
  aws: { readonly approvals: { pending(): Promise<{ migrationId: string; step: string }[]> }; readonly sfn: SFNClient; readonly machineArn: string },
  run: (event: TaskEvent, deps: TaskDeps) => Promise<{ note: string; reverify?: { differences: readonly { detail: string }[] } | null }> = reverify,
): Promise<{ migrationId: string; execution: string; note: string; differences: string[] }[]> {
  const waiting = new Set((await aws.approvals.pending()).filter((p) => p.step === 'cutover').map((p) => p.migrationId));
  const done: { migrationId: string; execution: string; note: string; differences: string[] }[] = [];
  if (waiting.size === 0) return done;
  let nextToken: string | undefined;
  do {
    const page = await aws.sfn.send(new ListExecutionsCommand({ stateMachineArn: aws.machineArn, statusFilter: 'RUNNING', nextToken }));
    for (const e of page.executions ?? []) {
      if (!e.executionArn) continue;
      const described = await aws.sfn.send(new DescribeExecutionCommand({ executionArn: e.executionArn }));
      const { migration, migrationId } = migrationOf(described.input);
      if (!migrationId || !waiting.has(migrationId)) continue;
      waiting.delete(migrationId);
      const out = await run({ migration, execution: e.executionArn }, deps);
      done.push({ migrationId, execution: e.executionArn, note: out.note, differences: (out.reverify?.differences ?? []).map((d) => d.detail) });
    }
    nextToken = page.nextToken;
  } while (nextToken && waiting.size > 0);
  return done;
}
