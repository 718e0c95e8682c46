import { DatabaseError, FerryError, TransientError } from './errors.ts';
import { scalar, type SqlConnection } from './ports/sql.ts';

/**
 * The operator's throttle query (`throttle.query`, like gh-ost's throttle-query): one SELECT whose
 * first value > 0 holds the copy. It runs with the migration's credentials, so three lines guard it:
 * the text is refused before anything runs when it could write, lock, sleep, wait or read files
 * (throttleQueryProblem); it runs read-only with a statement time limit (throttleQueryStatement);
 * and a failure reaches operators as its class, never as the database's text, which can carry the
 * rows a query read (throttleQueryFailure). The boundary that holds whatever the text says is the
 * grant of the user that runs it (README, "throttle.query").
 */

/** How long the throttle query may run before the server stops it. */
export const THROTTLE_QUERY_SECONDS = 2;

/** Words refused anywhere in the query (quoted identifiers included), with why. */
const REFUSED: readonly (readonly [RegExp, string])[] = [
  [/\bINTO\b/i, 'must not write its result anywhere (INTO): let it return the value'],
  [/\b(SLEEP|BENCHMARK)\b/i, 'must not sleep or spin ($1)'],
  [/\b(GET_LOCK|RELEASE_LOCK|RELEASE_ALL_LOCKS|IS_USED_LOCK|IS_FREE_LOCK)\b/i, 'must not take or inspect user locks ($1)'],
  [/\b(MASTER_POS_WAIT|SOURCE_POS_WAIT|MASTER_GTID_WAIT|WAIT_FOR_EXECUTED_GTID_SET|WAIT_UNTIL_SQL_THREAD_AFTER_GTIDS)\b/i, 'must not wait for replication ($1): use throttle.replica for replica lag'],
  [/\b(LOAD_FILE)\b/i, 'must not read files ($1)'],
  [/\b(FOR\s+UPDATE|FOR\s+SHARE|LOCK\s+IN\s+SHARE\s+MODE)\b/i, 'must not lock rows ($1)'],
  [/\b(PROCEDURE)\b/i, 'must not call a procedure (PROCEDURE)'],
];

/**
 * Why a throttle query is refused before it runs, or null for one plain SELECT. String literals
 * are left out of the word checks; quoted identifiers are not (`` `sleep`(1) `` calls SLEEP).
 */
export function throttleQueryProblem(query: string): string | null {
  // A backslash escapes a quote unless the session's sql_mode says NO_BACKSLASH_ESCAPES: where a
  // string ends would depend on the server, so none is taken.
  if (query.includes('\\')) return 'must not contain a backslash (where a string ends would depend on the sql_mode)';
  let words = '';
  let quote: string | null = null;
  for (let i = 0; i < query.length; i++) {
    const ch = query[i]!;
    if (quote) {
      if (ch === quote && query[i + 1] === quote) i++;
      else if (ch === quote) quote = null;
      // a string's text is left out; an identifier's (`…`, and "…" under ANSI_QUOTES) is checked
      else if (quote !== "'") words += ch;
      if (quote === null) words += ' ';
      continue;
    }
    if (ch === "'" || ch === '"' || ch === '`') {
      quote = ch;
      words += ' ';
    } else if (ch === ';') {
      return 'must be a single SELECT statement: remove the ";"';
    } else if (ch === '#' || (ch === '-' && query[i + 1] === '-') || (ch === '/' && query[i + 1] === '*')) {
      return 'must not contain comments (MariaDB and MySQL run /*! … */ as code): remove them';
    } else {
      words += ch;
    }
  }
  if (quote) return `has an unterminated ${quote} quote`;
  if (!/^\s*SELECT\b/i.test(words)) return 'must be a single SELECT statement, e.g. "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND <> \'Sleep\'"';
  for (const [pattern, why] of REFUSED) {
    const found = pattern.exec(words);
    if (found) return why.replace('$1', (found[1] ?? found[0]).toUpperCase().replace(/\s+/g, ' '));
  }
  return null;
}

export type SqlFlavor = 'mariadb' | 'mysql';

/**
 * The statement that runs the query: on MariaDB read-only and stopped after
 * THROTTLE_QUERY_SECONDS, for this one statement (the session, which the copy shares, keeps its
 * settings); on MySQL, which has no per-statement read-only, stopped by an optimizer hint.
 */
export function throttleQueryStatement(query: string, flavor: SqlFlavor): string {
  if (flavor === 'mariadb') return `SET STATEMENT max_statement_time=${THROTTLE_QUERY_SECONDS}, tx_read_only=1 FOR ${query.trim()}`;
  return query.trim().replace(/^SELECT\b/i, `SELECT /*+ MAX_EXECUTION_TIME(${THROTTLE_QUERY_SECONDS * 1000}) */`);
}

const flavors = new WeakMap<SqlConnection, SqlFlavor>();

async function flavorOf(conn: SqlConnection): Promise<SqlFlavor> {
  let flavor = flavors.get(conn);
  if (!flavor) {
    flavor = /mariadb/i.test((await scalar(conn, 'SELECT VERSION()')) ?? '') ? 'mariadb' : 'mysql';
    flavors.set(conn, flavor);
  }
  return flavor;
}

/** The failure classes operators see, by the database's error number. */
const CLASSES: readonly { readonly errnos: readonly number[]; readonly what: string; readonly retryable?: true }[] = [
  { errnos: [1969, 3024, 1317, 1028, 1205], what: `timed out (it may run ${THROTTLE_QUERY_SECONDS} s)`, retryable: true },
  { errnos: [1064, 1149, 1582, 1583, 1584], what: 'syntax error' },
  { errnos: [1146, 1054, 1049, 1109, 1305, 1630], what: 'a table, column or function it names does not exist' },
  { errnos: [1142, 1143, 1044, 1045, 1227, 1370, 1356, 1449, 1698], what: "no permission: grant the user that runs it SELECT on what it reads" },
  { errnos: [1792, 1290], what: 'it tried to write (it runs read-only)' },
];

/**
 * The throttle query's failure as operators may see it: its class and the error number, never the
 * database's text (an error can print the values a query read) and never the original error.
 */
export function throttleQueryFailure(err: unknown, connection: string): FerryError {
  const errno = err instanceof FerryError ? err.errno : undefined;
  const failed = `the throttle query failed on "${connection}"`;
  const known = errno === undefined ? undefined : CLASSES.find((c) => c.errnos.includes(errno));
  if (known) {
    const message = `${failed}: ${known.what} (error ${errno})`;
    return known.retryable ? new TransientError(message, { errno }) : new DatabaseError(message, { errno });
  }
  if (err instanceof TransientError) return new TransientError(`${failed}: the connection to the database was lost${errno ? ` (error ${errno})` : ''}`, { errno });
  if (err instanceof FerryError) return new DatabaseError(`${failed}: the database refused it while running it${errno === undefined ? '' : ` (error ${errno})`}`, { errno });
  return new DatabaseError(`${failed}: ${err instanceof Error ? err.name : 'an unknown error'}`);
}

/**
 * Runs the throttle query (validated by throttleQueryProblem) read-only with its time limit: its
 * first value as a decimal string, or null for no row or NULL. A value that is not a number, or a
 * failure, throws an error that names the class only.
 */
export async function runThrottleQuery(conn: SqlConnection, query: string): Promise<string | null> {
  let value: string | null;
  try {
    value = await scalar(conn, throttleQueryStatement(query, await flavorOf(conn)));
  } catch (err) {
    throw throttleQueryFailure(err, conn.name);
  }
  if (value === null) return null;
  if (value.trim() === '' || !Number.isFinite(Number(value))) throw new DatabaseError(`the throttle query failed on "${conn.name}": it returned no number (its first value must be a number; > 0 holds the copy)`);
  return value;
}
