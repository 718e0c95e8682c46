import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { processAlive } from '../../../lambdas/adapters/processes.ts';
import { acquireRunLock } from '../../../bin/cli/run-lock.ts';
import { tempDir } from '../../helpers/cli.ts';

/**
 * A process killed but not yet reaped by its parent (a zombie) still answers a signal check: a run
 * killed with SIGKILL must not block its own resume for as long as its parent has not reaped it.
 */
describe('a killed process not yet reaped', () => {
  it('is not alive, and a run lock it held is taken over', async () => {
    // a child that exits at once under a parent that never reaps it (the shell becomes \`sleep\`, which never waits)
    const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 60'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const pid = Number(await new Promise<string>((resolve) => parent.stdout.once('data', (d) => resolve(String(d).trim()))));
      await expect.poll(() => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.charAt(0), { timeout: 5000 }).toBe('Z');
      expect(processAlive(pid)).toBe(false);
      expect(processAlive(parent.pid!)).toBe(true);
      const dir = tempDir();
      writeFileSync(join(dir, 'm.lock'), JSON.stringify({ pid, startedAt: new Date().toISOString() }));
      const lock = acquireRunLock(dir, 'm');
      expect(lock).toHaveProperty('release');
      expect(JSON.parse(readFileSync(join(dir, 'm.lock'), 'utf8')).pid).toBe(process.pid);
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('a process that runs is alive', () => {
    expect(processAlive(process.pid)).toBe(true);
    expect(processAlive(Number(spawnSync('sh', ['-c', 'echo $$']).stdout.toString()))).toBe(false);
  });
});
