import { compareIds, fromBig, toBig, type Id } from './ids.ts';

/**
 * Holes are the ids of a span that held no row when ferry looked: inclusive intervals, sorted,
 * disjoint, never adjacent. A row that later appears in a hole was committed late (InnoDB hands out
 * AUTO_INCREMENT ids before the transaction commits), so holes are exactly where to look again.
 */
export type Hole = readonly [Id, Id];

/** The holes of `[lo, hi]` given the ids present in it, sorted ascending. */
export function holesAround(lo: Id, hi: Id, present: readonly Id[]): Hole[] {
  const out: Hole[] = [];
  let next = toBig(lo);
  const end = toBig(hi);
  for (const id of present) {
    const v = toBig(id);
    if (v < next) continue;
    if (v > end) break;
    if (v > next) out.push([fromBig(next), fromBig(v - 1n)]);
    next = v + 1n;
  }
  if (next <= end) out.push([fromBig(next), hi]);
  return out;
}

/**
 * The holes of `[lo, hi]` from the rows of a gap query: each row is an id present in the span and
 * the id present just before it (null for the first). Only rows that follow a gap need be given,
 * plus the first row and the span's largest id (`last`), or nothing at all for an empty span.
 */
export function holesFromGaps(lo: Id, hi: Id, rows: readonly { prev: Id | null; id: Id }[], last: Id | null): Hole[] {
  if (last === null) return [[lo, hi]];
  const out: Hole[] = [];
  for (const r of rows) {
    const from = r.prev === null ? toBig(lo) : toBig(r.prev) + 1n;
    const to = toBig(r.id) - 1n;
    if (from <= to) out.push([fromBig(from), fromBig(to)]);
  }
  if (compareIds(last, hi) < 0) out.push([fromBig(toBig(last) + 1n), hi]);
  return out;
}

/** Whether `id` lies in one of the holes (binary search). */
export function inHoles(holes: readonly Hole[], id: Id): boolean {
  const v = toBig(id);
  let a = 0;
  let b = holes.length - 1;
  while (a <= b) {
    const mid = (a + b) >> 1;
    const [from, to] = holes[mid]!;
    if (v < toBig(from)) b = mid - 1;
    else if (v > toBig(to)) a = mid + 1;
    else return true;
  }
  return false;
}

/** The holes with these ids filled (ids outside every hole are ignored). */
export function fillHoles(holes: readonly Hole[], ids: readonly Id[]): Hole[] {
  if (ids.length === 0) return [...holes];
  const filled = [...new Set(ids.map(toBig))].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  const out: Hole[] = [];
  let i = 0;
  for (const [from, to] of holes) {
    let start = toBig(from);
    const end = toBig(to);
    while (i < filled.length && filled[i]! < start) i++;
    while (i < filled.length && filled[i]! <= end) {
      const v = filled[i]!;
      if (v > start) out.push([fromBig(start), fromBig(v - 1n)]);
      start = v + 1n;
      i++;
    }
    if (start <= end) out.push([fromBig(start), fromBig(end)]);
  }
  return out;
}

/** How many ids the holes span, as a decimal string. */
export function holeIds(holes: readonly Hole[]): Id {
  return fromBig(holes.reduce((n, [from, to]) => n + toBig(to) - toBig(from) + 1n, 0n));
}
