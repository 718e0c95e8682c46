import { InvalidInput } from '../core/errors.ts';
import type { TaskDeps } from '../core/ports/task-deps.ts';
import { whoHoldsTheTable } from '../core/tables/app-impact.ts';
import { CheckpointStore } from '../core/checkpoints.ts';
import { captureNames, captureOn, dropShadow, shadowNames, swapDone, windowNames, withShortLockWait } from '../core/tables/shadow.ts';
import { dropAnchors, restoreOwnTriggers, type OwnTrigger } from '../core/tables/own-triggers.ts';
import { inspectTable } from '../core/tables/inspector.ts';
import { closeWindow, windowInWords, windowOpen } from '../core/tables/revert-window.ts';
import type { SqlConnection } from '../core/ports/sql.ts';
import type { TableRef } from '../core/identifiers.ts';
import { lockOf, MACHINE, parseOnlineAlterInput, type OnlineAlterState } from './open-alter.ts';

export interface AbandonEvent {
  readonly migration: unknown;
  /** `$$.Execution.Id`: a task of an execution another one has replaced leaves everything to the new owner. */
  readonly execution?: string;
  /** Asked for by `ferry abandon`, which stops the running execution first: whoever owns the migration. */
  readonly requested?: boolean;
}

/**
 * Takes back what the migration put on the live table — its triggers first (so the application's
 * writes stop being doubled at once), then the shadow and the capture log — and forgets the
 * checkpoint, leaving the table exactly as it was; a later run with the same input starts from the
 * beginning. Runs after a rejected cut-over, after a failure, and for `ferry abandon`. Once the
 * tables are swapped there is nothing to take back: the altered table is in use.
 */
export async function abandonAlter(event: AbandonEvent, deps: TaskDeps): Promise<{ abandoned: boolean; note: string }> {
  const input = parseOnlineAlterInput(event.migration);
  const t = input.table;
  const conn = await deps.sql.connect(t.connection);
  const store = new CheckpointStore<OnlineAlterState>(conn, t.database, MACHINE);
  const owner = (await store.owner(input.migrationId)) ?? null;
  const say = (note: string, abandoned: boolean) => {
    deps.report({ migrationId: input.migrationId, phase: abandoned ? 'abandoned' : 'abandon', done: '0', total: null, note, throttle: null });
    return { abandoned, note };
  };
  if (!event.requested && event.execution && owner && owner !== event.execution) {
    return say(`execution ${owner} now runs ${input.migrationId}; its triggers and shadow stay`, false);
  }
  if (await swapDone(conn, t)) {
    const old = shadowNames(t).old.table;
    // asked for by a person: the revert window's triggers on the table go too (a revert then compares the whole table); a failed run's take-back leaves them
    if (event.requested && (await windowOpen(conn, input.migrationId, t))) {
      await closeWindow(conn, input.migrationId, t, lockOf(input, deps));
      return say(`${t.table} was already swapped for the altered table (the original is ${old}); the revert window's triggers and log were dropped: ferry revert now compares the whole table`, false);
    }
    return say(`${t.table} was already swapped for the altered table (the original is ${old}); nothing to take back`, false);
  }
  // The shadow is named after the table alone: another migration's triggers on it write there, and
  // dropping it would fail every write of the application to the table.
  const names = captureNames(input.migrationId, t);
  const others = (await captureOn(conn, t)).triggers.filter((n) => ![names.insert, names.update, names.delete, ...windowNames(input.migrationId, t).anchors].includes(n));
  if (others.length) {
    throw new InvalidInput(
      'migrationId',
      `${t.table} has the capture triggers of another migration (${others.join(', ')}), which write to ${shadowNames(t).shadow.table}: ${input.migrationId} did not put them there, and nothing was dropped. Abandon that migration with its own id and input.`,
    );
  }
  const saved = await store.stateField<OwnTrigger[]>(input.migrationId, 'ownTriggers');
  if (saved?.length) {
    await withShortLockWait(conn, lockOf(input, deps), async () => {
      await restoreOwnTriggers(conn, t, saved);
      await dropAnchors(conn, input.migrationId, t);
    });
  }
  const before = await leftBy(conn, input.migrationId, t);
  await dropShadow(conn, input.migrationId, t, lockOf(input, deps), async (attempt, backoff) => {
    say(`dropping the triggers: another session holds a lock on ${t.table}${await whoHoldsTheTable(conn, input.cutover.lockWaitSeconds)}; retrying in ${backoff} s (attempt ${attempt})`, false);
  });
  const after = await leftBy(conn, input.migrationId, t);
  if (after.length) return say(`still on ${t.database}: ${after.join(', ')}; nothing else was left by ${input.migrationId}`, false);
  await store.remove(input.migrationId);
  return say(before.length ? `dropped ${before.join(', ')}; ${t.table} is as it was` : `nothing of ${input.migrationId} was on ${t.database}.${t.table} (no trigger, shadow or capture log of it); its checkpoint is forgotten`, true);
}

/** What the migration put beside the live table that is there now: its triggers, the shadow and the capture log, by name. */
async function leftBy(conn: SqlConnection, migrationId: string, t: TableRef): Promise<string[]> {
  const names = captureNames(migrationId, t);
  const ours = new Set([names.insert, names.update, names.delete, ...windowNames(migrationId, t).anchors]);
  const triggers = (await captureOn(conn, t)).triggers.filter((n) => ours.has(n)).map((n) => `trigger ${n}`);
  const tables: string[] = [];
  for (const table of [shadowNames(t).shadow, names.log, windowNames(migrationId, t).log]) if (await inspectTable(conn, table)) tables.push(table.table);
  return [...triggers, ...tables];
}

/** What a stopped run leaves on the live table: ferry's triggers, if they are there, in words (null: none). */
export async function triggersLeft(raw: unknown, deps: TaskDeps): Promise<string | null> {
  const input = parseOnlineAlterInput(raw);
  const t = input.table;
  const conn = await deps.sql.connect(t.connection);
  const window = await windowInWords(conn, input.migrationId, t);
  if (window) return window;
  const { triggers, since } = await captureOn(conn, t);
  if (!triggers.length) return null;
  return `ferry's triggers stay on ${t.database}.${t.table} (since ${since}): every insert, update and delete of the application there also writes ${shadowNames(t).shadow.table}`;
}
