import type { TaskDeps } from '../core/ports/task-deps.ts';
import { ERRNO, SwapFailed, type FerryError } from '../core/errors.ts';
import { loopState, report, save, type TaskEvent } from '../core/tables/chunked-copy.ts';
import { dropTriggers, shadowNames, swapDone, swapOnce } from '../core/tables/shadow.ts';
import { openAlter, type LoopState } from './open-alter.ts';

/**
 * The postponed cut-over, after its approval: one atomic `RENAME TABLE t TO _t_old, _t_new TO t`
 * under a short lock_wait_timeout (while it waits, every query on the table queues behind it),
 * retried with backoff while another session holds a lock. A failed attempt changes nothing:
 * the original table stays in place and serving. Then the triggers go.
 */
export async function swapTables(event: TaskEvent, deps: TaskDeps): Promise<LoopState> {
  const m = await openAlter(event, deps);
  const input = m.input.alter;
  const t = input.table;
  const { old } = shadowNames(t);
  const conn = m.source;
  if (!(await swapDone(conn, t))) {
    const { lockWaitSeconds, attempts } = input.cutover;
    for (let attempt = 1; ; attempt++) {
      m.state.swapAttempts += 1;
      try {
        const ai = await swapOnce(conn, t, lockWaitSeconds);
        if (ai !== null) m.state.autoIncrementAtSwap = ai;
        break;
      } catch (err) {
        if ((err as FerryError).errno !== ERRNO.LOCK_WAIT_TIMEOUT) throw err;
        if (attempt >= attempts) {
          await save(m);
          throw new SwapFailed(
            `RENAME TABLE could not get the lock on ${t.table} in ${attempts} attempts of ${lockWaitSeconds} s; ${t.table} is unchanged and serving, ` +
              'the triggers still keep the shadow in step. Find the long transaction (SHOW PROCESSLIST) and run the migration again to ask for the cut-over again.',
          );
        }
        const backoff = Math.min(30, 2 ** (attempt - 1));
        report(m, `swap attempt ${attempt}/${attempts}: another session holds a lock on ${t.table} (waited ${lockWaitSeconds} s); the table is unchanged and serving; retrying in ${backoff} s`);
        await new Promise((r) => setTimeout(r, backoff * 1000));
      }
    }
  }
  await dropTriggers(conn, input.migrationId, t);
  m.state.swappedAt = m.state.swappedAt ?? new Date(deps.now()).toISOString();
  await save(m, 'cleanup-approval');
  report(m, `swapped: ${t.table} is the altered table; the original is ${old.table}; triggers dropped`);
  return loopState(m, { done: true });
}
