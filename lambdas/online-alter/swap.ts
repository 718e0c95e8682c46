import type { TaskDeps } from '../core/ports/task-deps.ts';
import { ERRNO, SwapFailed, VerificationFailed, type FerryError } from '../core/errors.ts';
import { loopState, report, save, type TaskEvent } from '../core/tables/chunked-copy.ts';
import { captureNames, dropTriggers, dropWindowAnchors, rewriteLogged, shadowNames, swapDone, swapOnce, withShortLockWait, writeLateLogged } from '../core/tables/shadow.ts';
import { dropTableIfExists } from '../core/tables/table-writes.ts';
import { copyKeyColumns, inspectTable, uniqueIndexOnAll } from '../core/tables/inspector.ts';
import { makeWindow, windowOpen } from '../core/tables/revert-window.ts';
import { keyOf } from '../core/tables/copier.ts';
import { whoHoldsTheTable } from '../core/tables/app-impact.ts';
import { createAnchors, dropAnchors, ownTriggers, restoreOwnTriggers, swapKeepingTriggers } from '../core/tables/own-triggers.ts';
import { lockOf, openAlter, type AlterMigration, type LoopState } from './open-alter.ts';
import { refuseIfStillDifferent } from './reverify.ts';

/**
 * Writes of the old table that its triggers could not carry into the shadow in the last moments
 * before the RENAME (the log was looked at just before it): each row the new table lacks is
 * written to it from the old one, strictly; one it refuses fails the task, naming it. Rows the new
 * table has are the application's by now and are left alone.
 */
async function settleLateLogged(m: AlterMigration): Promise<void> {
  const t = m.input.alter.table;
  const { old } = shadowNames(t);
  const key = keyOf(m.tables);
  const refused = await writeLateLogged(m.source, m.input.migrationId, t, { ...m.tables, sourceTable: old, targetTable: t });
  if (refused.length) {
    throw new VerificationFailed(
      `${t.table} was swapped for the altered table, but rows the application wrote just before the swap could not be written to it: ${key.isInteger ? 'ids' : `keys (${key.names})`} ${refused.slice(0, 10).join(', ')}. ` +
        `They are in ${old.table}, which no cleanup has touched; write them to ${t.table} by hand.`,
    );
  }
}

/**
 * The postponed cut-over, after its approval. First the rows the triggers could not write to the
 * shadow (a clash on a new unique key, a value it cannot hold) are written again; one still
 * refused stops the swap, naming it. Then one atomic `RENAME TABLE t TO _t_old, _t_new TO t` under
 * a short lock_wait_timeout (while it waits, every query on the table queues behind it), retried
 * with backoff while another session holds a lock: a failed attempt changes nothing, the original
 * table stays in place and serving. A table with triggers of its own swaps under LOCK TABLES
 * instead, its triggers moving to the altered table (see swapKeepingTriggers). Then ferry's
 * triggers go, and the capture log is read once more.
 */
export async function swapTables(event: TaskEvent, deps: TaskDeps): Promise<LoopState> {
  const m = await openAlter(event, deps);
  const input = m.input.alter;
  const t = input.table;
  const { shadow, old } = shadowNames(t);
  const conn = m.source;
  if (!(await swapDone(conn, t))) {
    const lock = lockOf(input, deps);
    const saved = m.state.ownTriggers;
    if (saved?.length) {
      const back = await withShortLockWait(conn, lock, () => restoreOwnTriggers(conn, t, saved));
      if (back.length) report(m, `triggers ${back.join(', ')} of ${t.table}, taken off by a run stopped during the swap, are back on it`);
    }
    // Nothing the re-verification found different while the approval waited is swapped in.
    if (m.phase === 'cutover-approval') await refuseIfStillDifferent(m);
    // on the shadow, so the RENAME carries it onto the table (see revert-window.ts); a table with triggers of its own cannot be reverted, and gets none,
    // nor does an ALTER after which the original has no unique key on the copy key's columns (see revert.ts)
    const columns = copyKeyColumns(m.state.copyKey!);
    const shadowInfo = (await inspectTable(conn, shadow))!;
    const windowKey = m.input.alter.revertWindow && !saved?.length && (await ownTriggers(conn, t)).length === 0 && uniqueIndexOnAll((await inspectTable(conn, t))!, columns)
      ? columns.map((c) => shadowInfo.columns.find((x) => x.name.toLowerCase() === c.toLowerCase())!)
      : null;
    try {
      const ai = await withShortLockWait(conn, lock, async () => {
        // Right before each attempt (a wait for the lock can last minutes while the application writes on), so a refusal logged since is met here, before the swap.
        const rewritten = await rewriteLogged(conn, input.migrationId, m.tables);
        if (rewritten) {
          m.state.rowsWrittenAgain = (m.state.rowsWrittenAgain ?? 0) + rewritten;
          report(m, `${rewritten} rows the triggers could not write to the shadow were written again`);
        }
        m.state.swapAttempts += 1;
        const own = await ownTriggers(conn, t);
        if (own.length === 0) {
          // in each attempt, right before the RENAME: a lock wait is the swap's, with its retries and their messages
          if (windowKey) await makeWindow(conn, input.migrationId, t, shadow, windowKey);
          return swapOnce(conn, t, input.alter);
        }
        // recorded first: a run stopped while they move puts them back on the table (see restoreOwnTriggers)
        m.state.ownTriggers = own;
        await save(m);
        await createAnchors(conn, input.migrationId, t, own);
        const renamer = await deps.sql.connectDedicated(t.connection);
        try {
          return await swapKeepingTriggers(conn, renamer, m.tables, input.migrationId, input.alter, own, lock.seconds);
        } finally {
          await renamer.close();
        }
      }, async (attempt, backoff) => report(m, `swap attempt ${attempt}/${lock.attempts}: another session holds a lock on ${t.table} (waited ${lock.seconds} s)${await whoHoldsTheTable(conn, lock.seconds)}; the table is unchanged and serving; retrying in ${backoff} s`));
      m.state.autoIncrementAtSwap = ai;
    } catch (err) {
      if ((err as FerryError).errno !== ERRNO.LOCK_WAIT_TIMEOUT) throw err;
      await save(m);
      throw new SwapFailed(
        `RENAME TABLE could not get the lock on ${t.table} in ${lock.attempts} attempts of ${lock.seconds} s; ${t.table} is unchanged and serving. ` +
          'Find the long transaction (SHOW PROCESSLIST) and run the migration again.',
      );
    }
  }
  await withShortLockWait(conn, lockOf(input, deps), async () => {
    await dropTriggers(conn, input.migrationId, t);
    await dropAnchors(conn, input.migrationId, t);
    await dropWindowAnchors(conn, input.migrationId, t);
  });
  m.state.swappedAt = m.state.swappedAt ?? new Date(deps.now()).toISOString();
  await save(m);
  await settleLateLogged(m);
  await dropTableIfExists(conn, captureNames(input.migrationId, t).log);
  await save(m, 'cleanup-approval');
  const moved = m.state.ownTriggers?.length ? `; its own triggers (${m.state.ownTriggers.map((tr) => tr.name).join(', ')}) are on the altered table` : '';
  const window = (await windowOpen(conn, input.migrationId, t)) ? `; until the cleanup, the revert window's triggers log the key of each row the application writes in ${t.table} (ferry revert carries those rows back)` : '';
  report(m, `swapped: ${t.table} is the altered table; the original is ${old.table}; ferry's capture triggers dropped${moved}${window}`);
  return loopState(m, { done: true });
}
