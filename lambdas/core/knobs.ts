import type { z } from 'zod';
import { InvalidInput } from './errors.ts';
import type { FlagStore } from './ports/flags.ts';
import { knobFields, type KnobName } from './input-parts.ts';

export { knobFields, type KnobName } from './input-parts.ts';

/**
 * Live knobs: input fields an operator changes while a migration runs (`ferry set`), kept beside
 * its flags (`/ferry/<migrationId>/knobs/<name>` in SSM, `<state-dir>/knobs.json` locally) and
 * read by the copy loops before each chunk. A knob overrides the input's field for as long as it
 * is set; the identity of the migration (what moves where) is never a knob.
 */

export const KNOB_NAMES = Object.keys(knobFields) as KnobName[];

function isKnob(name: string): name is KnobName {
  return Object.hasOwn(knobFields, name);
}

/** Why a knob's value is refused, or null: the same rule as the input field's. */
export function knobProblem(name: string, value: string): string | null {
  if (!isKnob(name)) return `not a knob; the knobs are ${KNOB_NAMES.join(', ')}`;
  if (!/^(0|[1-9][0-9]{0,9})$/.test(value)) return `must be a whole number, e.g. ${name}=${name.endsWith('Millis') ? 250 : 10}`;
  const parsed = knobFields[name].safeParse(Number(value));
  return parsed.success ? null : parsed.error.issues[0]!.message;
}

/**
 * `NAME=VALUE` words from the command line, each checked with its field's rule; the first bad one
 * is refused as InvalidInput naming the knob. An empty value (`NAME=`) takes the knob back.
 */
export function parseKnobAssignments(words: readonly string[]): { set: Record<string, string>; unset: KnobName[] } {
  const set: Record<string, string> = {};
  const unset: KnobName[] = [];
  if (words.length === 0) throw new InvalidInput('(knobs)', `name at least one knob as NAME=VALUE; the knobs are ${KNOB_NAMES.join(', ')}`);
  for (const word of words) {
    const eq = word.indexOf('=');
    if (eq <= 0) throw new InvalidInput(word, `write a knob as NAME=VALUE (e.g. chunk.targetMillis=250); the knobs are ${KNOB_NAMES.join(', ')}`);
    const name = word.slice(0, eq);
    const value = word.slice(eq + 1).trim();
    if (value === '' && isKnob(name)) {
      unset.push(name);
      continue;
    }
    const problem = knobProblem(name, value);
    if (problem) throw new InvalidInput(name, problem);
    set[name] = value;
  }
  return { set, unset };
}

export interface Tuned<T> {
  /** The input with every knob that applies put in. */
  readonly input: T;
  /** The knobs in force (name → value), sorted by name. */
  readonly inForce: Readonly<Record<string, string>>;
  /** Knobs set but not applied, each with why: a warning for the operator. */
  readonly ignored: readonly string[];
}

function withValue(input: unknown, name: KnobName, value: number): unknown | null {
  const copy = structuredClone(input) as Record<string, unknown>;
  const path = name.split('.');
  let at: Record<string, unknown> = copy;
  for (const key of path.slice(0, -1)) {
    const next = at[key];
    if (!next || typeof next !== 'object') return null;
    at = next as Record<string, unknown>;
  }
  if (!(path[path.length - 1]! in at)) return null;
  at[path[path.length - 1]!] = value;
  return copy;
}

/**
 * The input with the knobs put in, validated by the machine's own schema: each knob is tried in
 * turn, and one that the schema refuses with the others (minRows above maxRows) or that names no
 * field of this machine's input (page.docs on a table) is left out and named in `ignored`.
 */
export function withKnobs<S extends z.ZodType>(schema: S, input: z.output<S>, knobs: Readonly<Record<string, string>>): Tuned<z.output<S>> {
  const names = Object.keys(knobs).sort();
  // Together first: two knobs may only make sense with each other (chunk.minRows with chunk.maxRows).
  let together: unknown = input;
  for (const name of names) {
    together = together === null || knobProblem(name, knobs[name]!) ? null : withValue(together, name as KnobName, Number(knobs[name]));
  }
  const all = together === null ? null : schema.safeParse(together);
  if (all?.success) return { input: all.data, inForce: Object.fromEntries(names.map((n) => [n, knobs[n]!])), ignored: [] };
  let current: z.output<S> = input;
  const inForce: Record<string, string> = {};
  const problems = new Map<string, string>();
  let left = names.filter((name) => {
    const problem = knobProblem(name, knobs[name]!);
    if (problem) problems.set(name, problem);
    return !problem;
  });
  // One at a time, again and again while any goes in: a knob that needs another (minRows below a
  // lower maxRows) goes in once that one has, whatever their order.
  for (let progress = true; progress && left.length; ) {
    progress = false;
    for (const name of [...left]) {
      const candidate = withValue(current, name as KnobName, Number(knobs[name]));
      if (candidate === null) {
        problems.set(name, `this migration's input has no ${name}`);
        left = left.filter((n) => n !== name);
        continue;
      }
      const parsed = schema.safeParse(candidate);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        problems.set(name, `${issue.path.join('.') || '(input)'} ${issue.message}`);
        continue;
      }
      current = parsed.data;
      inForce[name] = knobs[name]!;
      problems.delete(name);
      left = left.filter((n) => n !== name);
      progress = true;
    }
  }
  const ignored = names.filter((name) => problems.has(name)).map((name) => `${name}=${knobs[name]}: ${problems.get(name)}`);
  return { input: current, inForce: Object.fromEntries(names.filter((n) => n in inForce).map((n) => [n, inForce[n]!])), ignored };
}

/**
 * The knobs set, for a page that shows them: a value its field's rule refuses (over a cap, say,
 * written in SSM by hand) is shown with why it is ignored.
 */
export function describeKnobsSet(knobs: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(knobs).map(([name, value]) => {
    const problem = knobProblem(name, value);
    return [name, problem ? `${value} (ignored: ${problem})` : value];
  }));
}

/** `chunk.maxRows=100 throttle.maxThreadsRunning=10`: knobs as an operator writes them. */
export function describeKnobs(knobs: Readonly<Record<string, string>>): string {
  return Object.entries(knobs).map(([k, v]) => `${k}=${v}`).join(' ');
}

/** Puts the live knobs into a migration's input. */
export type Retune<I> = (knobs: Readonly<Record<string, string>>) => Tuned<I>;

/** A running migration that follows the live knobs: its input, what was last read, and how to retune. */
export interface Knobbed<I extends { readonly migrationId: string }> {
  input: I;
  readonly knobs: { seen: string; inForce: Readonly<Record<string, string>>; readAt?: number };
  readonly retune: Retune<I>;
}

export function knobsNotRead(): Knobbed<{ migrationId: string }>['knobs'] {
  return { seen: '', inForce: {} };
}

/**
 * Knobs are read before every chunk, but within one task at most this often: chunks of a few
 * milliseconds (and up to 40 partitions) would otherwise call SSM, which an account shares, far more
 * than it allows. A change is taken in within this long.
 */
export const KNOB_READ_MILLIS = 2000;

/**
 * Reads the migration's knobs from the store and, when they changed since the last read, puts
 * them into its input. Says what was ignored, and, when they changed since this task's first
 * read (the progress line shows the knobs in force in any case), what is in force now.
 */
export async function readKnobs<I extends { readonly migrationId: string }>(m: Knobbed<I>, store: FlagStore, now: number): Promise<{ inForce: string | null; ignored: readonly string[] } | null> {
  if (m.knobs.readAt !== undefined && now - m.knobs.readAt < KNOB_READ_MILLIS) return null;
  m.knobs.readAt = now;
  const knobs = await store.list(m.input.migrationId);
  const seen = JSON.stringify(knobs);
  if (seen === m.knobs.seen) return null;
  const first = m.knobs.seen === '';
  m.knobs.seen = seen;
  if (first && seen === '{}') return null;
  const tuned = m.retune(knobs);
  m.input = tuned.input;
  const changed = !first && JSON.stringify(m.knobs.inForce) !== JSON.stringify(tuned.inForce);
  m.knobs.inForce = tuned.inForce;
  return {
    inForce: !changed ? null : Object.keys(tuned.inForce).length ? `knobs in force: ${describeKnobs(tuned.inForce)}` : "no knobs set: the input's values are in force",
    ignored: tuned.ignored.map((w) => `knob ignored: ${w}`),
  };
}
