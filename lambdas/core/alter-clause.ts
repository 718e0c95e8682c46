/**
 * What ferry reads in an ALTER clause: the columns it renames and the foreign keys it drops. The
 * database judges the clause itself (on a scratch copy in Preflight); this only maps names.
 */

/** The clause's items, split at the commas outside quotes, backticks and parentheses. */
export function alterItems(clause: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let start = 0;
  for (let i = 0; i < clause.length; i++) {
    const ch = clause[i]!;
    if (quote) {
      if (ch === '\\' && quote !== '`') i++;
      else if (ch === quote) quote = null;
    } else if (ch === "'" || ch === '"' || ch === '`') quote = ch;
    else if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === ',' && depth === 0) {
      items.push(clause.slice(start, i).trim());
      start = i + 1;
    }
  }
  items.push(clause.slice(start).trim());
  return items.filter((s) => s.length > 0);
}

const NAME = '(`(?:[^`]|``)+`|[A-Za-z0-9_$]+)';

function unquote(name: string): string {
  return name.startsWith('`') ? name.slice(1, -1).replace(/``/g, '`') : name;
}

export interface Rename {
  readonly from: string;
  readonly to: string;
}

/** `CHANGE [COLUMN] old new …` and `RENAME COLUMN old TO new`, in the clause's order. */
export function renamedColumns(clause: string): Rename[] {
  const change = new RegExp(`^CHANGE\\s+(?:COLUMN\\s+)?(?:IF\\s+EXISTS\\s+)?${NAME}\\s+${NAME}`, 'i');
  const rename = new RegExp(`^RENAME\\s+COLUMN\\s+(?:IF\\s+EXISTS\\s+)?${NAME}\\s+TO\\s+${NAME}`, 'i');
  const out: Rename[] = [];
  for (const item of alterItems(clause)) {
    const m = change.exec(item) ?? rename.exec(item);
    if (m) out.push({ from: unquote(m[1]!), to: unquote(m[2]!) });
  }
  return out;
}

/** Where each column of the table goes in the altered one: its name there, by the clause's renames (names compare case-insensitively). */
export function renameMap(clause: string): (column: string) => string {
  const map = new Map<string, string>();
  for (const r of renamedColumns(clause)) map.set(r.from.toLowerCase(), r.to);
  return (column) => map.get(column.toLowerCase()) ?? column;
}

const NOT_A_COLUMN = new Set(['INDEX', 'KEY', 'PRIMARY', 'FOREIGN', 'CONSTRAINT', 'CHECK', 'PARTITION', 'UNIQUE', 'FULLTEXT', 'SPATIAL', 'SYSTEM', 'PERIOD']);

/**
 * Columns the clause drops (`DROP [COLUMN] [IF EXISTS] name`), lower-cased. One dropped and added
 * again in the same clause is a new column, as a plain ALTER makes it: its values are not copied.
 */
export function droppedColumns(clause: string): Set<string> {
  const drop = new RegExp(`^DROP\\s+(COLUMN\\s+)?(?:IF\\s+EXISTS\\s+)?${NAME}`, 'i');
  const out = new Set<string>();
  for (const item of alterItems(clause)) {
    const m = drop.exec(item);
    if (!m) continue;
    const quoted = m[2]!.startsWith('`');
    if (!m[1] && !quoted && NOT_A_COLUMN.has(m[2]!.toUpperCase())) continue;
    out.add(unquote(m[2]!).toLowerCase());
  }
  return out;
}

/** Whether the clause sets the table's AUTO_INCREMENT (the table option `AUTO_INCREMENT [=] n`, not a column's attribute). */
export function setsAutoIncrement(clause: string): boolean {
  return alterItems(clause).some((item) => !/^(ADD|MODIFY|CHANGE|ALTER)\b/i.test(item) && /(^|\s)AUTO_INCREMENT\s*=?\s*\d+/i.test(item));
}

/** Foreign keys the clause drops (`DROP FOREIGN KEY name`, `DROP CONSTRAINT name`). */
export function droppedConstraints(clause: string): string[] {
  const drop = new RegExp(`^DROP\\s+(?:FOREIGN\\s+KEY|CONSTRAINT)\\s+(?:IF\\s+EXISTS\\s+)?${NAME}`, 'i');
  return alterItems(clause).flatMap((item) => {
    const m = drop.exec(item);
    return m ? [unquote(m[1]!)] : [];
  });
}

/**
 * The clause with the names of the foreign keys it drops replaced (on the shadow table they carry
 * other names, see shadow.ts). Only the name in a DROP item is touched.
 */
export function renameDroppedConstraints(clause: string, rename: (name: string) => string): string {
  const drop = new RegExp(`^(DROP\\s+(?:FOREIGN\\s+KEY|CONSTRAINT)\\s+(?:IF\\s+EXISTS\\s+)?)${NAME}(.*)$`, 'is');
  return alterItems(clause)
    .map((item) => {
      const m = drop.exec(item);
      if (!m) return item;
      const to = rename(unquote(m[2]!));
      return `${m[1]}\`${to.replace(/`/g, '``')}\`${m[3]}`;
    })
    .join(', ');
}
