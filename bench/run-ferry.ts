import { spawn } from 'node:child_process';
import type { LatencySummary } from '../test/helpers/app-writer.ts';

/** ferry as an operator runs it (`node bin/ferry.js …`, CI=true): its exit status and stdout; `onStderr` sees stderr as it grows. */
export function ferry(args: string[], onStderr?: (text: string) => void): Promise<{ status: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/ferry.js', ...args], { env: { ...process.env, CI: 'true' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      onStderr?.(stderr);
    });
    child.on('close', (status) => resolve({ status, stdout }));
  });
}

/** Milliseconds since the epoch, to the microsecond: the application writers' clock (see app-writer.ts). */
export const now = () => performance.timeOrigin + performance.now();

/** One phase's latency line: statements, errors, median, p99 and max. */
export const latencyLine = (name: string, l: LatencySummary, width = 26) =>
  `  ${name.padEnd(width)} n=${l.statements} errors=${l.errors} median=${l.medianMillis?.toFixed(1)} p99=${l.p99Millis?.toFixed(1)} max=${l.maxMillis?.toFixed(1)} ms`;
