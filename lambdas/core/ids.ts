/**
 * Ids travel as decimal strings everywhere outside this module. Arithmetic happens on BigInt,
 * so a BIGINT UNSIGNED id of 18446744073709551615 is exact.
 */
export type Id = string;

const DECIMAL = /^-?(0|[1-9][0-9]*)$/;

export function isId(value: unknown): value is Id {
  return typeof value === 'string' && DECIMAL.test(value);
}

export function toBig(id: Id): bigint {
  if (!isId(id)) throw new TypeError(`not a decimal id: ${JSON.stringify(id)}`);
  return BigInt(id);
}

export function fromBig(n: bigint): Id {
  return n.toString(10);
}

export function addId(id: Id, delta: bigint | number): Id {
  return fromBig(toBig(id) + BigInt(delta));
}

export function compareIds(a: Id, b: Id): -1 | 0 | 1 {
  const x = toBig(a);
  const y = toBig(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function maxId(a: Id, b: Id): Id {
  return compareIds(a, b) >= 0 ? a : b;
}

export function minId(a: Id, b: Id): Id {
  return compareIds(a, b) <= 0 ? a : b;
}

/** Inclusive range of ids, `lo <= hi`. */
export interface IdRange {
  readonly lo: Id;
  readonly hi: Id;
}
