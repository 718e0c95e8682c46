import type { TaskDeps } from '../core/ports/task-deps.ts';
import { scalar } from '../core/ports/sql.ts';
import { ERRNO, SwapFailed, type FerryError } from '../core/errors.ts';
import { qualified } from '../core/identifiers.ts';
import { inspectTable } from '../core/tables/inspector.ts';
import { loopState, report, save, type TaskEvent } from '../core/tables/chunked-copy.ts';
import { dropTriggerSql, shadowNames } from '../core/tables/shadow.ts';
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
  const { shadow, old } = shadowNames(t);
  const conn = m.source;
  const alreadySwapped = !(await inspectTable(conn, shadow)) && (await inspectTable(conn, old)) !== null;
  if (!alreadySwapped) {
    const { lockWaitSeconds, attempts } = input.cutover;
    for (let attempt = 1; ; attempt++) {
      m.state.swapAttempts += 1;
      try {
        // Every DDL here waits at most lockWaitSeconds: queries on the table queue behind a waiting one.
        await conn.execute(`SET SESSION lock_wait_timeout = ${lockWaitSeconds}`);
        // The shadow's counter must continue above every id the table ever handed out, not only above its max.
        const ai = await scalar(conn, 'SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [t.database, t.table]);
        if (ai !== null) {
          await conn.execute(`ALTER TABLE ${qualified(shadow)} AUTO_INCREMENT = ${BigInt(ai).toString()}`);
          m.state.autoIncrementAtSwap = ai;
        }
        await conn.execute(`RENAME TABLE ${qualified(t)} TO ${qualified(old)}, ${qualified(shadow)} TO ${qualified(t)}`);
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
      } finally {
        await conn.execute('SET SESSION lock_wait_timeout = DEFAULT').catch(() => undefined);
      }
    }
  }
  for (const sql of dropTriggerSql(input.migrationId, t)) await conn.execute(sql);
  m.state.swappedAt = m.state.swappedAt ?? new Date(deps.now()).toISOString();
  await save(m, 'cleanup-approval');
  report(m, `swapped: ${t.table} is the altered table; the original is ${old.table}; triggers dropped`);
  return loopState(m, { done: true });
}
