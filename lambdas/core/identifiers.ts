/**
 * Identifiers are validated against a plain-name pattern and then always backtick-quoted.
 * Nothing an operator types is ever pasted into SQL unchecked.
 */
export const PLAIN_NAME = /^[A-Za-z_][A-Za-z0-9_$]{0,63}$/;

export function isPlainName(name: string): boolean {
  return PLAIN_NAME.test(name);
}

/** Backtick-quotes a validated identifier; throws on anything that is not a plain name. */
export function quoteIdent(name: string): string {
  if (!isPlainName(name)) throw new TypeError(`not a plain identifier: ${JSON.stringify(name)}`);
  return '`' + name + '`';
}

export interface TableRef {
  readonly database: string;
  readonly table: string;
}

export function qualified(t: TableRef): string {
  return `${quoteIdent(t.database)}.${quoteIdent(t.table)}`;
}
