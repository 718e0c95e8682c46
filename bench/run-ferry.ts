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

/** What cutOverThenRevert saw: when the application's window after the cut-over began, when the revert was asked for and ended (the writers' clock), and the run's last line. */
export interface RevertTimes {
  readonly window: number;
  readonly asked: number;
  readonly ended: number;
  readonly out: { outcome?: string; reverted: { rowsCompared: string; rowsCarried?: number; spansCompared?: number } };
}

/**
 * A migration run as an operator runs it, `ferry local <machine> --approve cutover`, until its
 * cleanup approval waits; then `atCutOver`, 5 s of the application, and `ferry revert`, waited
 * for to the end, and 2 s more of the application. Fails unless the run ends reverted.
 */
export async function cutOverThenRevert(machine: string, input: string, stateDir: string, migrationId: string, atCutOver: () => Promise<void>): Promise<RevertTimes> {
  let cutOver = false;
  const run = ferry(['local', machine, '--input', input, '--approve', 'cutover', '--state-dir', stateDir], (text) => {
    if (!cutOver && /waiting for approval "cleanup"/.test(text)) cutOver = true;
  });
  while (!cutOver) await new Promise((r) => setTimeout(r, 50));
  await atCutOver();
  const window = now();
  await new Promise((r) => setTimeout(r, 5000));
  const asked = now();
  const decided = await ferry(['revert', migrationId, '--reason', 'benchmark', '--state-dir', stateDir]);
  if (decided.status !== 0) throw new Error(`ferry revert exited ${decided.status}`);
  const result = await run;
  const ended = now();
  await new Promise((r) => setTimeout(r, 2000));
  const out = JSON.parse(result.stdout.trim().split('\n').pop()!);
  if (result.status !== 0 || out.outcome !== 'reverted') throw new Error(`ferry: ${result.stdout.slice(-500)}`);
  return { window, asked, ended, out };
}
