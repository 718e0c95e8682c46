import type { TaskDeps } from '../core/ports/task-deps.ts';
import { CheckpointConflict } from '../core/errors.ts';
import { addId, compareIds, maxId, toBig, type Id } from '../core/ids.ts';
import { justBelow, splitRange, type PartitionBounds, type PartitionRow } from '../core/tables/partitions.ts';
import { keyAt, keyOf } from '../core/tables/copier.ts';
import { reached } from '../core/tables/chunked-copy.ts';
import { spanBlock } from '../core/tables/ledger.ts';
import type { KeyValue } from '../core/keys.ts';
import { copyInitial, initialCopyDone } from './copy-chunks.ts';
import { byKey, loopState, openMigration, outcomeState, partitionsOf, report, type LoopState, type Migration, type TableCopyState, type TaskEvent } from './open-migration.ts';

/**
 * The initial copy in partitions: PlanPartitions splits what is left of [rangeMin, rangeMax] into
 * `partitions` id ranges, each with a checkpoint row of its own; a Map state runs CopyPartition
 * over them, `partitions` at a time, each its own chunk loop (its own chunk sizing, the same
 * throttle, its chunks verified while the next copies); FinishPartitions adds them up into the
 * migration's checkpoint and moves on to the catch-up.
 */

/** What the Map state iterates over: the partitions not yet through. */
export interface PartitionPlan {
  readonly items: readonly { readonly index: number }[];
}

/**
 * A partition's chunk loop starts from the migration's state, with its own bounds and counters;
 * `share` is its part of the rows, of `whole`. A table copied by another key numbers each
 * partition's ledger spans in a block of its own (see KeyLedger), after the migration's.
 */
function startOf(m: Migration, bounds: PartitionBounds, share: bigint, whole: bigint): TableCopyState {
  const first = bounds.index === 0;
  const keyed = byKey(m);
  return {
    ...structuredClone(m.state),
    copiedUpTo: justBelow(bounds, keyed),
    // The lowest partition goes on from what was verified (from the lowest id on either side when nothing was); the others from their own start.
    verifiedUpTo: first ? m.state.verifiedUpTo : justBelow(bounds, keyed),
    ...(keyed ? { nextSpan: spanBlock(bounds.index + 1) } : {}),
    rowsCopied: '0',
    rowsVerified: '0',
    rangesVerified: 0,
    rangesRepaired: 0,
    throttledMillis: 0,
    estimatedRows: whole === 0n ? '0' : ((BigInt(m.state.estimatedRows) * share) / whole).toString(),
  };
}

/**
 * The keys after `from` (from the lowest when null) up to `upTo`, split into at most `count` ranges
 * of about equal rows, by the source's estimated row count: each bound is read `rows / count`
 * entries of the index past the last, so planning reads the index once.
 */
async function keyPartitions(m: Migration, from: KeyValue | null, upTo: KeyValue, count: number): Promise<PartitionBounds[]> {
  const key = keyOf(m.tables);
  const per = Math.max(1, Math.ceil(Number(m.state.estimatedRows) / count));
  const out: PartitionBounds[] = [];
  for (let lo = from; out.length < count; ) {
    const rest = { lo, loExcluded: true, hi: upTo };
    const hi = out.length === count - 1 ? null : await keyAt(m.source, m.input.source, key, rest, per - 1);
    out.push({ index: out.length, lo, hi: hi ?? upTo });
    if (hi === null || hi === upTo) break;
    lo = hi;
  }
  return out;
}

export async function planPartitions(event: TaskEvent, deps: TaskDeps): Promise<PartitionPlan> {
  const m = await openMigration(event, deps);
  const store = partitionsOf(m);
  let planned = await store.all();
  if (planned.length === 0) {
    const s = m.state;
    const from = byKey(m) || s.copiedUpTo === null ? s.rangeMin : addId(s.copiedUpTo, 1);
    if (byKey(m)) {
      if (s.rangeMax === null || reached(m, s.copiedUpTo, s.rangeMax)) return { items: [] };
      const bounds = await keyPartitions(m, s.copiedUpTo, s.rangeMax, m.input.partitions);
      const n = BigInt(bounds.length);
      await store.plan(bounds.map((b): PartitionRow<TableCopyState> => ({ bounds: b, done: false, state: startOf(m, b, 1n, n) })), s.owner);
      planned = await store.all();
      report(m, `initial copy of keys ${keyOf(m.tables).describe({ lo: s.copiedUpTo, loExcluded: true, hi: s.rangeMax })} in ${planned.length} partitions of about equal rows, ${m.input.partitions} at a time`);
    } else {
      if (from === null || s.rangeMax === null || compareIds(from, s.rangeMax) > 0) return { items: [] };
      const bounds = splitRange(from, s.rangeMax, m.input.partitions);
      const whole = toBig(s.rangeMax) - toBig(from) + 1n;
      await store.plan(bounds.map((b): PartitionRow<TableCopyState> => ({ bounds: b, done: false, state: startOf(m, b, toBig(b.hi) - toBig(b.lo) + 1n, whole) })), s.owner);
      planned = await store.all();
      report(m, `initial copy of ids ${from}..${s.rangeMax} in ${planned.length} partitions, ${m.input.partitions} at a time`);
    }
  }
  return { items: planned.filter((p) => !p.done).map((p) => ({ index: p.bounds.index })) };
}

export interface PartitionEvent extends TaskEvent {
  readonly partition: { readonly index: number };
}

/** One partition's chunk loop, until its time budget is spent, the throttle says wait, or it is through. */
export async function copyPartition(event: PartitionEvent, deps: TaskDeps): Promise<LoopState> {
  const m = await openMigration(event, deps);
  const store = partitionsOf(m);
  const all = await store.all();
  const index = event.partition.index;
  const p = all.find((x) => x.bounds.index === index);
  if (!p) throw new CheckpointConflict(`partition ${index + 1} of migration "${m.input.migrationId}" was never planned (or was already added up): start the execution again to resume from the checkpoint`);
  const owner = m.state.owner;
  const others = BigInt(m.state.rowsCopied) + all.filter((x) => x !== p).reduce((n, x) => n + BigInt(x.state.rowsCopied), 0n);
  const label = `partition ${index + 1}/${all.length} (${byKey(m) ? `keys ${keyOf(m.tables).describe({ lo: p.bounds.lo, loExcluded: true, hi: p.bounds.hi })}` : `ids ${p.bounds.lo}..${p.bounds.hi}`})`;
  // The partition's own view of the migration: its state, its checkpoint row, its share of the history's loop iterations.
  const share = (input: Migration['input']): Migration['input'] => ({ ...input, execution: { ...input.execution, maxLoopIterations: Math.max(1, Math.floor(input.execution.maxLoopIterations / all.length)) } });
  const view: Migration = {
    ...m,
    input: share(m.input),
    retune: (knobs) => {
      const tuned = m.retune(knobs);
      return { ...tuned, input: share(tuned.input) };
    },
    // Progress is the migration's: what was copied before the split and by the other partitions (as of this task's start), and this one's.
    deps: { ...m.deps, report: (r) => m.deps.report({ ...r, done: (BigInt(r.done) + others).toString(), total: m.state.estimatedRows, note: `${label}: ${r.note}` }) },
    state: { ...p.state, owner },
    store: { save: (_id, _phase, state) => store.save(index, state, false, owner) },
  };
  if (p.done) return loopState(view, { done: true });
  const outcome = await copyInitial(view, { upTo: p.bounds.hi, verifyToEnd: true });
  if (outcome.kind !== 'caught-up') return outcomeState(view, outcome);
  await store.save(index, view.state, true, owner);
  report(view, `through: ${view.state.rowsCopied} rows copied, verified up to ${view.state.verifiedUpTo}`);
  return loopState(view, { done: true });
}

/**
 * Adds the partitions up into the migration's checkpoint once every one is through, and goes on to
 * the catch-up. One not through (its loop handed back before the history grew too long) hands the
 * migration to a new execution, which plans nothing new and copies on from the partitions' rows.
 */
export async function finishPartitions(event: TaskEvent, deps: TaskDeps): Promise<LoopState> {
  const m = await openMigration(event, deps);
  const store = partitionsOf(m);
  // Already added up (a retry after the save, or a re-run after a crash): only the rows are left to forget.
  if (m.phase !== 'copy') {
    await store.remove();
    return loopState(m, { done: true });
  }
  const all = await store.all();
  if (all.some((p) => !p.done)) return { ...loopState(m, { done: false }), continueAsNew: true };
  const s = m.state;
  const keyed = byKey(m);
  for (const { bounds, state } of all) {
    s.rowsCopied = (BigInt(s.rowsCopied) + BigInt(state.rowsCopied)).toString();
    s.throttledMillis += state.throttledMillis;
    // Every id up to a partition's end was copied (its loop went through it); keys: the last partition's end.
    s.copiedUpTo = s.copiedUpTo === null || keyed ? bounds.hi : maxId(s.copiedUpTo, bounds.hi);
  }
  // Verified as far as the ranges stay unbroken, from the lowest partition on; past a break the
  // Verify phase verifies (and counts) again.
  let verified: Id | null = null;
  for (const { bounds, state } of all) {
    if (state.verifiedUpTo === null) break;
    const below = justBelow(bounds, keyed);
    if (bounds.index > 0 && (verified === null || (keyed ? verified !== below : compareIds(verified, below!) < 0))) break;
    verified = verified === null || keyed ? state.verifiedUpTo : maxId(verified, state.verifiedUpTo);
    s.rowsVerified = (BigInt(s.rowsVerified) + BigInt(state.rowsVerified)).toString();
    s.rangesVerified += state.rangesVerified;
    s.rangesRepaired += state.rangesRepaired;
  }
  if (all.length > 0) s.verifiedUpTo = verified;
  // The key ledger's spans go on after the partitions' blocks (see startOf).
  if (keyed && all.length > 0) s.nextSpan = spanBlock(all.length + 1);
  const done = await initialCopyDone(m);
  await store.remove();
  return done;
}
