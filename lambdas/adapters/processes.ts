import { readFileSync } from 'node:fs';

/**
 * Whether a process of this machine is running (one of another user's counts: signalling it is
 * refused, not unknown). A process that has ended but that its parent has not reaped yet (a zombie:
 * a run killed with SIGKILL, until its shell or test runner waits for it) still answers a signal,
 * so where /proc says so it is not running.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return !zombie(pid);
}

/** Whether /proc shows the process as ended and not yet reaped; false where there is no /proc. */
function zombie(pid: number): boolean {
  try {
    // the state follows the command name, which is in parentheses and may itself hold them
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}
