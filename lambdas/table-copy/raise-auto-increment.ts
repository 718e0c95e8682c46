import type { TaskDeps } from '../core/ports/task-deps.ts';
import { chooseIdOffset, RATE_SAMPLE_SECONDS } from '../core/id-offset.ts';
import { idBounds, keyOf } from '../core/tables/copier.ts';
import { autoIncrementColumn, autoIncrementOf } from '../core/tables/inspector.ts';
import { setAutoIncrement } from '../core/tables/table-writes.ts';
import { byKey, loopState, openMigration, report, save, type LoopState, type Migration, type TaskEvent } from './open-migration.ts';
import { copyInitial } from './copy-chunks.ts';

/**
 * The idOffset in force: the input's, or a day of the source's insert rate (at least a million),
 * measured from the highest id Preflight saw to the highest id at least ten seconds later. The
 * initial copy starts meanwhile: ids up to rangeMax are the source's alone whatever the offset.
 */
async function idOffset(m: Migration, column: string): Promise<{ offset: bigint; max: bigint; note: string }> {
  const read = async () => {
    const { max } = await idBounds(m.source, m.input.source, column);
    return max === null ? 0n : BigInt(max);
  };
  if (m.input.idOffset !== undefined) return { offset: BigInt(m.input.idOffset), max: await read(), note: 'idOffset from the input' };
  const since = Date.parse(m.state.startedAt);
  const wait = RATE_SAMPLE_SECONDS * 1000 - (m.deps.now() - since);
  if (wait > 0) {
    report(m, `measuring the source's insert rate for ${RATE_SAMPLE_SECONDS} s to choose idOffset; the initial copy starts meanwhile`);
    const until = m.deps.now() + wait;
    // Each chunk moves the checkpoint; a throttle's answer only ends the copying early.
    await copyInitial(m, { until });
    const left = until - m.deps.now();
    if (left > 0) await new Promise((r) => setTimeout(r, left));
  }
  const max = await read();
  const first = m.state.rangeMax === null ? 0n : byKey(m) ? await firstMax(m, column) : BigInt(m.state.rangeMax);
  const choice = chooseIdOffset(max > first ? max - first : 0n, m.deps.now() - since);
  m.state.insertsPerHour = choice.insertsPerHour.toString();
  return { offset: choice.offset, max, note: `idOffset ${choice.offset} chosen: the source receives about ${choice.insertsPerHour} rows an hour, and the offset is a day of that, at least 1000000` };
}

/**
 * The highest id of a table copied by another key when the copy began: its first key's, when that
 * is the AUTO_INCREMENT column; else none is known, and the rate is measured from the highest id now.
 */
async function firstMax(m: Migration, column: string): Promise<bigint> {
  const first = keyOf(m.tables).decode(m.state.rangeMax!);
  if (keyOf(m.tables).columns[0]!.name === column) return BigInt(first[0]!);
  const { max } = await idBounds(m.source, m.input.source, column);
  return max === null ? 0n : BigInt(max);
}

/**
 * Moves the target's AUTO_INCREMENT above every id the source holds, plus the idOffset, so rows the
 * application writes to the new table never take an id the old table still hands out. Only ever
 * raises it.
 */
export async function raiseAutoIncrement(event: TaskEvent, deps: TaskDeps): Promise<LoopState> {
  const m = await openMigration(event, deps);
  const { input } = m;
  // A table copied by another key has ids to keep apart only in an AUTO_INCREMENT column of its own.
  const column = byKey(m) ? await autoIncrementColumn(m.source, input.source) : m.tables.idColumn;
  if (column === null) {
    report(m, `${input.source.table} has no AUTO_INCREMENT column: its keys are the application's, and no idOffset is needed`);
    m.state.idOffset = null;
    await save(m);
    return loopState(m, { done: true });
  }
  const { offset, max, note } = await idOffset(m, column);
  m.state.idOffset = offset.toString();
  report(m, note);
  const wanted = max + offset + 1n;
  const current = await autoIncrementOf(m.target, input.target);
  if (current === null) {
    report(m, `${input.target.table} has no AUTO_INCREMENT column: nothing to raise`);
  } else if (BigInt(current) < wanted) {
    await setAutoIncrement(m.target, input.target, wanted);
    report(m, `target AUTO_INCREMENT raised from ${current} to ${wanted}`);
  }
  m.state.autoIncrement = current === null ? null : (BigInt(current) < wanted ? wanted : BigInt(current)).toString();
  await save(m);
  return loopState(m, { done: true });
}
