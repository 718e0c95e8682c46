import type { Progress } from '../../lambdas/core/ports/task-deps.ts';

const fmt = new Intl.NumberFormat('en-US');

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** One progress line: `[copy] ████░░ 41% 410,000/1,000,000 rows  52,000 rows/s  ETA 11s  throttled: …` */
export function formatProgress(p: Progress, rowsPerSecond: number | null, width = 24): string {
  const done = Number(p.done);
  const unit = p.unit ?? 'rows';
  const total = p.total === null ? null : Math.max(Number(p.total), done);
  const parts = [`[${p.phase}]`];
  if (total && total > 0) {
    const ratio = Math.min(done / total, 1);
    const filled = Math.round(ratio * width);
    parts.push(`${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${Math.floor(ratio * 100)}%`, `${fmt.format(done)}/~${fmt.format(total)} ${unit}`);
  } else {
    parts.push(`${fmt.format(done)} ${unit}`);
  }
  if (rowsPerSecond !== null) {
    parts.push(`${fmt.format(Math.round(rowsPerSecond))} ${unit}/s`);
    if (total && rowsPerSecond > 0 && done < total) parts.push(`ETA ${formatDuration((total - done) / rowsPerSecond)}`);
  }
  if (p.throttle) parts.push(`throttled: ${p.throttle}`);
  else if (p.note) parts.push(p.note);
  if (p.knobs) parts.push(`[knobs ${Object.entries(p.knobs).map(([k, v]) => `${k}=${v}`).join(' ')}]`);
  return parts.join('  ');
}

/** Renders progress on stderr: one redrawn line on a terminal, a line per second or per change otherwise. */
export class ProgressBar {
  private samples: { at: number; done: number }[] = [];
  private lastPrinted = 0;
  private lastLine = '';
  private lastPhase = '';
  private lastKnobs = '';
  constructor(private readonly out: NodeJS.WriteStream = process.stderr, private readonly now: () => number = Date.now) {}

  private rate(done: number, at: number): number | null {
    this.samples.push({ at, done });
    while (this.samples.length > 2 && at - this.samples[0]!.at > 10_000) this.samples.shift();
    const first = this.samples[0]!;
    const seconds = (at - first.at) / 1000;
    return seconds >= 0.5 ? (done - first.done) / seconds : null;
  }

  update(p: Progress): void {
    if (p.warning) {
      this.say(`warning: ${p.warning}`);
      return;
    }
    const at = this.now();
    if (p.phase !== this.lastPhase) {
      this.samples = [];
      if (this.out.isTTY && this.lastLine) this.out.write('\n');
      this.lastPhase = p.phase;
      this.lastPrinted = 0;
    }
    const line = formatProgress(p, this.rate(Number(p.done), at));
    // A change of knobs is shown at once, so the operator sees it taken in.
    const knobs = JSON.stringify(p.knobs ?? {});
    if (this.out.isTTY) {
      this.out.write(`\r\x1b[2K${line.slice(0, (this.out.columns || 120) - 1)}`);
      this.lastLine = line;
    } else if (at - this.lastPrinted >= 1000 || p.throttle || p.notice || knobs !== this.lastKnobs) {
      this.out.write(line + '\n');
      this.lastPrinted = at;
      this.lastKnobs = knobs;
    }
  }

  /** A line that is not progress (a state change, an approval prompt). */
  say(line: string): void {
    if (this.out.isTTY && this.lastLine) {
      this.out.write('\n');
      this.lastLine = '';
    }
    this.out.write(line + '\n');
  }
}
