import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FERRY = fileURLToPath(new URL('../../bin/ferry.js', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The last line of stdout, parsed: the execution's output or failure. */
  readonly last: Record<string, unknown> | null;
}

export function tempDir(prefix = 'ferry-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeJson(dir: string, name: string, value: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(value, null, 2));
  return path;
}

export interface Running {
  readonly child: ChildProcess;
  readonly done: Promise<CliResult>;
  /** Resolves when stderr has printed a line matching the pattern. */
  waitFor(pattern: RegExp, timeoutMillis?: number): Promise<void>;
  stderr(): string;
}

/** ferry processes started by this test file and not yet ended. */
const alive = new Set<ChildProcess>();

/** Kills what a test left running (a test that failed or timed out while ferry waited for an approval). */
export function killStrays(): void {
  for (const child of alive) child.kill('SIGKILL');
  alive.clear();
}
process.once('exit', killStrays);

export function startFerry(args: string[], env: NodeJS.ProcessEnv = {}): Running {
  const child = spawn(process.execPath, [FERRY, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  alive.add(child);
  child.once('exit', () => alive.delete(child));
  let stdout = '';
  let stderr = '';
  const watchers: { pattern: RegExp; resolve: () => void }[] = [];
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => {
    stderr += d;
    for (const w of [...watchers]) if (w.pattern.test(stderr)) { watchers.splice(watchers.indexOf(w), 1); w.resolve(); }
  });
  const done = new Promise<CliResult>((resolve) => {
    child.on('close', (code, signal) => {
      const lines = stdout.trim().split('\n');
      let last: Record<string, unknown> | null = null;
      try {
        last = JSON.parse(lines[lines.length - 1] ?? '');
      } catch {
        last = null;
      }
      resolve({ code, signal, stdout, stderr, last });
    });
  });
  return {
    child,
    done,
    stderr: () => stderr,
    waitFor(pattern, timeoutMillis = 60_000) {
      if (pattern.test(stderr)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern} in stderr:\n${stderr}`)), timeoutMillis);
        watchers.push({ pattern, resolve: () => { clearTimeout(timer); resolve(); } });
        void done.then(() => { clearTimeout(timer); if (!pattern.test(stderr)) reject(new Error(`ferry exited before ${pattern}; stderr:\n${stderr}`)); });
      });
    },
  };
}

export function runFerry(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return startFerry(args, env).done;
}
