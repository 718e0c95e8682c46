import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { processAlive } from '../../lambdas/adapters/processes.ts';

/** The live `ferry local` run holding the migration's lock in this state dir (who, since when), or null. Reads only. */
export function runLockInfo(stateDir: string, migrationId: string): { pid: number; startedAt: string; user: string | null } | null {
  try {
    const lock = JSON.parse(readFileSync(join(stateDir, `${migrationId}.lock`), 'utf8')) as { pid: number; startedAt: string; user?: string };
    return lock.pid && processAlive(lock.pid) ? { pid: lock.pid, startedAt: lock.startedAt, user: lock.user ?? null } : null;
  } catch {
    return null;
  }
}

/** The pid of the live `ferry local` run holding the migration's lock in this state dir, or null. Reads only. */
export function runLockHolder(stateDir: string, migrationId: string): number | null {
  return runLockInfo(stateDir, migrationId)?.pid ?? null;
}

/**
 * One `ferry local` run per migration and state dir: a second one started by mistake (another
 * terminal, a retry loop) is refused instead of racing the first over the same tables. A lock
 * left by a run that died (kill -9) is taken over. Returns the release function, or the holder.
 */
export function acquireRunLock(stateDir: string, migrationId: string): { release: () => void } | { heldBy: number } {
  mkdirSync(stateDir, { recursive: true });
  const path = join(stateDir, `${migrationId}.lock`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString(), user: userInfo().username }), { flag: 'wx' });
      return { release: () => rmSync(path, { force: true }) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let holder = 0;
      try {
        holder = (JSON.parse(readFileSync(path, 'utf8')) as { pid: number }).pid;
      } catch {
        // unreadable: treated as stale
      }
      if (holder && holder !== process.pid && processAlive(holder)) return { heldBy: holder };
      rmSync(path, { force: true });
    }
  }
  throw new Error(`cannot take the run lock ${path}`);
}
