import { quoteIdent } from './identifiers.ts';

/**
 * A table's key: the columns of a unique index whose values name one row each (NOT NULL, whole),
 * in the index's order. Rows are read, compared and chunked in that order, by the server's own
 * comparison of each column (its collation for text), so a range of keys is one range of the index.
 *
 * How each column's values travel (always as strings, never JS numbers):
 * - `integer`: decimal text, compared as numbers;
 * - `text`: the text as read, compared under the column's collation;
 * - `binary`: hex, read with `HEX()` and given back with `UNHEX()`;
 * - `enum`: the member's position (`col + 0`), the order the index keeps, and compared as a
 *   number (compared with text, an enum compares as text, in another order);
 * - `temporal`: the server's text form, which it reads back exactly (a TIMESTAMP's in the session's
 *   time zone: every session reading and using a key must share it).
 */
export type KeyKind = 'integer' | 'text' | 'binary' | 'enum' | 'temporal';

export interface KeyColumn {
  readonly name: string;
  readonly kind: KeyKind;
}

/** A key value as it travels in checkpoints and the state machines' state (see KeyShape.encode). */
export type KeyValue = string;

/**
 * A range of keys, in the key's order: from `lo` (null: from the lowest key; `loExcluded`: just
 * after it) up to and including `hi`. A range that starts after a key seen is how ranges of any
 * key follow each other with nothing between them; an integer key's `{ lo, hi }` of ids is one.
 */
export interface KeyRange {
  readonly lo: KeyValue | null;
  readonly hi: KeyValue;
  readonly loExcluded?: boolean;
}

/** A predicate over the key columns with its `?` placeholders' values, in order. */
export interface KeyPredicate {
  readonly sql: string;
  readonly params: string[];
}

const KINDS: Record<string, KeyKind> = {
  tinyint: 'integer', smallint: 'integer', mediumint: 'integer', int: 'integer', integer: 'integer', bigint: 'integer',
  char: 'text', varchar: 'text', tinytext: 'text', text: 'text', mediumtext: 'text', longtext: 'text',
  binary: 'binary', varbinary: 'binary', tinyblob: 'binary', blob: 'binary', mediumblob: 'binary', longblob: 'binary',
  enum: 'enum',
  date: 'temporal', datetime: 'temporal', timestamp: 'temporal', time: 'temporal', year: 'temporal',
};

/** How a column of this data type can be a key column, or null (decimal, float, double, bit, spatial, JSON: not yet). */
export function keyKind(dataType: string): KeyKind | null {
  return KINDS[dataType.toLowerCase()] ?? null;
}

/** The shape of one table's key: how to read, encode, compare and order its values. */
export class KeyShape {
  /**
   * `orderedBy`: how many leading columns already name one row each in the table read (its unique
   * index covers them): rows are ordered by those alone, which the index gives without a sort, and
   * which is the same order (the key `(id, i)` read through a table's primary key on `id`).
   */
  constructor(readonly columns: readonly KeyColumn[], readonly orderedBy: number = columns.length) {
    if (columns.length === 0) throw new TypeError('a key has at least one column');
    if (!(orderedBy >= 1 && orderedBy <= columns.length)) throw new TypeError(`a key of ${columns.length} columns is ordered by 1 to ${columns.length} of them, not ${orderedBy}`);
    for (const c of columns) quoteIdent(c.name);
  }

  /** The key of one integer column, its values decimal ids. */
  static integer(column: string): KeyShape {
    return new KeyShape([{ name: column, kind: 'integer' }]);
  }

  /** A key given as its shape, or as the name of its one integer column. */
  static of(key: KeyShape | string): KeyShape {
    return typeof key === 'string' ? KeyShape.integer(key) : key;
  }

  /** One integer column: values are decimal ids, and ranges of them can be split by arithmetic. */
  get isInteger(): boolean {
    return this.columns.length === 1 && this.columns[0]!.kind === 'integer';
  }

  /** The select list that reads a row's key, each column as it travels, named `_k0`, `_k1`, …; `alias` qualifies the columns. */
  select(alias?: string): string {
    return this.columns.map((c, i) => `${this.read(c, alias)} AS \`_k${i}\``).join(', ');
  }

  /** The key of a row read with `select()`. */
  fromRow(row: Readonly<Record<string, unknown>>): KeyValue {
    return this.encode(this.columns.map((_, i) => {
      const v = row[`_k${i}`];
      if (v === undefined || v === null) throw new TypeError(`key column ${this.columns[i]!.name} read as NULL`);
      return Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
    }));
  }

  /**
   * A key value as one string: a single integer column's is its decimal text (an id, as ferry has
   * always recorded it); any other key's, the JSON array of its columns' values.
   */
  encode(parts: readonly string[]): KeyValue {
    if (parts.length !== this.columns.length) throw new TypeError(`a key of ${this.columns.length} columns, given ${parts.length} values`);
    return this.isInteger ? parts[0]! : JSON.stringify(parts);
  }

  decode(value: KeyValue): string[] {
    if (this.isInteger) return [value];
    const parts = JSON.parse(value) as unknown;
    if (!Array.isArray(parts) || parts.length !== this.columns.length || !parts.every((p) => typeof p === 'string')) {
      throw new TypeError(`not a key of (${this.columns.map((c) => c.name).join(', ')}): ${value}`);
    }
    return parts as string[];
  }

  /** `ORDER BY` the key, ascending or descending. */
  orderBy(direction: 'ASC' | 'DESC' = 'ASC', alias?: string): string {
    return this.columns.slice(0, this.orderedBy).map((c) => `${this.column(c, alias)} ${direction}`).join(', ');
  }

  /** Rows whose key is above `value` (`strict`) or at least it. */
  after(value: KeyValue, strict = true, alias?: string): KeyPredicate {
    return this.compare(value, '>', strict, alias);
  }

  /** Rows whose key is below `value` (`strict`) or at most it. */
  before(value: KeyValue, strict = true, alias?: string): KeyPredicate {
    return this.compare(value, '<', strict, alias);
  }

  /** Rows whose key lies in [lo, hi]. */
  between(lo: KeyValue, hi: KeyValue, alias?: string): KeyPredicate {
    return and(this.after(lo, false, alias), this.before(hi, false, alias));
  }

  /** Rows whose key lies in the range. */
  within(range: KeyRange, alias?: string): KeyPredicate {
    const upTo = this.before(range.hi, false, alias);
    return range.lo === null ? upTo : and(this.after(range.lo, range.loExcluded === true, alias), upTo);
  }

  /** Whether the range holds at most one key: it starts at its end. */
  single(range: KeyRange): boolean {
    return range.lo !== null && !range.loExcluded && range.lo === range.hi;
  }

  /** How a range is named to an operator. */
  describe(range: KeyRange): string {
    if (range.lo === null) return `up to ${range.hi}`;
    if (range.loExcluded) return `after ${range.lo} up to ${range.hi}`;
    return this.isInteger ? `${range.lo}..${range.hi}` : `${range.lo} .. ${range.hi}`;
  }

  /** The columns, as `a, b`. */
  get names(): string {
    return this.columns.map((c) => c.name).join(', ');
  }

  /** The same key under other column names (a log that keeps keys under its own names), in order. */
  renamed(names: readonly string[]): KeyShape {
    return new KeyShape(this.columns.map((c, i) => ({ name: names[i]!, kind: c.kind })), this.orderedBy);
  }

  /** The row with this key. */
  equals(value: KeyValue, alias?: string): KeyPredicate {
    const parts = this.decode(value);
    return { sql: this.columns.map((c) => `${this.column(c, alias)} = ${this.param(c)}`).join(' AND '), params: parts.map((p, i) => this.given(this.columns[i]!, p)) };
  }

  /** The key's values as a list of SQL values, `?, UNHEX(?), …`, in its columns' order (for `VALUES (…)`). */
  valuesOf(value: KeyValue): KeyPredicate {
    const parts = this.decode(value);
    return { sql: this.columns.map((c) => this.param(c)).join(', '), params: parts.map((p, i) => this.given(this.columns[i]!, p)) };
  }

  /** The rows with these keys (at least one). */
  oneOf(values: readonly KeyValue[], alias?: string): KeyPredicate {
    if (values.length === 0) throw new TypeError('oneOf needs at least one key');
    if (this.columns.length === 1) {
      const c = this.columns[0]!;
      return { sql: `${this.column(c, alias)} IN (${values.map(() => this.param(c)).join(', ')})`, params: values.map((v) => this.given(c, this.decode(v)[0]!)) };
    }
    const each = values.map((v) => this.equals(v, alias));
    return { sql: each.map((e) => `(${e.sql})`).join(' OR '), params: each.flatMap((e) => e.params) };
  }

  /**
   * Lexicographic comparison with the first column bounded on its own, so the server reads one
   * range of the index: `a >= ? AND (a > ? OR (a = ? AND b > ?))`. (MariaDB does not read a range
   * for a row comparison, `(a, b) > (?, ?)`: it scans the whole index.)
   */
  private compare(value: KeyValue, op: '>' | '<', strict: boolean, alias?: string): KeyPredicate {
    const parts = this.decode(value);
    const cols = this.columns;
    const params: string[] = [];
    const p = (i: number) => {
      params.push(this.given(cols[i]!, parts[i]!));
      return this.param(cols[i]!);
    };
    const col = (i: number) => this.column(cols[i]!, alias);
    const last = cols.length - 1;
    // from the last column outwards: c_n op(=) v_n, then (c_i op v_i OR (c_i = v_i AND inner))
    const nested = (i: number): string => {
      if (i === last) return `${col(i)} ${op}${strict ? '' : '='} ${p(i)}`;
      const strictly = `${col(i)} ${op} ${p(i)}`;
      const equal = `${col(i)} = ${p(i)}`;
      return `(${strictly} OR (${equal} AND ${nested(i + 1)}))`;
    };
    if (cols.length === 1) return { sql: nested(0), params };
    const lead = `${col(0)} ${op}= ${p(0)}`;
    return { sql: `${lead} AND ${nested(0)}`, params };
  }

  private column(c: KeyColumn, alias?: string): string {
    return `${alias ? `${quoteIdent(alias)}.` : ''}${quoteIdent(c.name)}`;
  }

  private read(c: KeyColumn, alias?: string): string {
    const col = this.column(c, alias);
    return c.kind === 'binary' ? `HEX(${col})` : c.kind === 'enum' ? `(${col} + 0)` : col;
  }

  private param(c: KeyColumn): string {
    return c.kind === 'binary' ? 'UNHEX(?)' : c.kind === 'enum' ? 'CAST(? AS UNSIGNED)' : '?';
  }

  /** A value checked against its column's form before it is sent. */
  private given(c: KeyColumn, part: string): string {
    if (c.kind === 'binary' && !/^([0-9A-Fa-f]{2})*$/.test(part)) throw new TypeError(`not hex: ${JSON.stringify(part)}`);
    if ((c.kind === 'integer' || c.kind === 'enum') && !/^-?[0-9]+$/.test(part)) throw new TypeError(`not an integer: ${JSON.stringify(part)}`);
    return part;
  }
}

function and(a: KeyPredicate, b: KeyPredicate): KeyPredicate {
  return { sql: `(${a.sql}) AND (${b.sql})`, params: [...a.params, ...b.params] };
}
