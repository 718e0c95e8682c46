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

/**
 * A refused word: not preceded by a letter, `_` or `$` (a digit may precede it: the server ends a
 * number literal where its digits end, so `1.0INTO` is the number 1.0, then INTO), nor followed by
 * a name's character.
 */
const word = (alternatives: string) => new RegExp(`(?<![A-Za-z_$])(${alternatives})(?![A-Za-z0-9_$])`, 'i');

/** Words refused anywhere in the query (quoted identifiers included), with why. */
const REFUSED: readonly (readonly [RegExp, string])[] = [
  [word('INTO'), 'must not write its result anywhere (INTO): let it return the value'],
  [word('SLEEP|BENCHMARK'), 'must not sleep or spin ($1)'],
  [word('GET_LOCK|RELEASE_LOCK|RELEASE_ALL_LOCKS|IS_USED_LOCK|IS_FREE_LOCK'), 'must not take or inspect user locks ($1)'],
  [word('MASTER_POS_WAIT|SOURCE_POS_WAIT|MASTER_GTID_WAIT|WAIT_FOR_EXECUTED_GTID_SET|WAIT_UNTIL_SQL_THREAD_AFTER_GTIDS'), 'must not wait for replication ($1): use throttle.replica for replica lag'],
  [word('LOAD_FILE'), 'must not read files ($1)'],
  [word('FOR\\s+UPDATE|FOR\\s+SHARE|LOCK\\s+IN\\s+SHARE\\s+MODE'), 'must not lock rows ($1)'],
  [word('PROCEDURE'), 'must not call a procedure (PROCEDURE)'],
  // The server checks its time limit between rows, not inside one function: these build or scan
  // strings in time that grows with their square, and neither the limit nor KILL stops them.
  [word('REPEAT|LPAD|RPAD|SPACE|REPLACE|INSERT|REGEXP|RLIKE|REGEXP_REPLACE|REGEXP_SUBSTR|REGEXP_INSTR'), 'must not build or match long strings ($1): the server cannot stop them within the time limit'],
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
 * The statement that runs the query, as a derived table of which one row is read (the driver
 * holds no more than that; the server refuses INTO there): on MariaDB read-only and stopped after
 * THROTTLE_QUERY_SECONDS, for this one statement (the session, which the copy shares, keeps its
 * settings); on MySQL, which has no per-statement read-only, stopped by an optimizer hint.
 */
export function throttleQueryStatement(query: string, flavor: SqlFlavor): string {
  const oneRow = `* FROM (${query.trim()}) AS ferry_throttle LIMIT 1`;
  if (flavor === 'mariadb') return `SET STATEMENT max_statement_time=${THROTTLE_QUERY_SECONDS}, tx_read_only=1 FOR SELECT ${oneRow}`;
  return `SELECT /*+ MAX_EXECUTION_TIME(${THROTTLE_QUERY_SECONDS * 1000}) */ ${oneRow}`;
}

/** How long ferry waits for the throttle query before it gives up on the session, whatever the server does. */
export const THROTTLE_QUERY_DEADLINE_MILLIS = (THROTTLE_QUERY_SECONDS + 2) * 1000;

const flavors = new WeakMap<SqlConnection, SqlFlavor>();

/**
 * MariaDB by what it can do (max_statement_time, which MySQL does not have), not by what its
 * version says (a server may be started to report any version, a proxy its own).
 */
async function flavorOf(conn: SqlConnection): Promise<SqlFlavor> {
  let flavor = flavors.get(conn);
  if (!flavor) {
    flavor = await scalar(conn, 'SELECT @@max_statement_time').then(
      () => 'mariadb' as const,
      (err: unknown) => {
        if (err instanceof FerryError && err.errno === 1193) return 'mysql' as const;
        throw err;
      },
    );
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
  let timer: ReturnType<typeof setTimeout> | undefined;
  const gaveUp = new TransientError(`the throttle query failed on "${conn.name}": timed out (no answer in ${THROTTLE_QUERY_DEADLINE_MILLIS / 1000} s; its session was closed)`);
  try {
    const statement = throttleQueryStatement(query, await flavorOf(conn));
    // The server's limit is checked between rows: past a deadline of its own ferry closes the
    // session (the task fails as transient and its retry opens a new one) rather than wait on it.
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        conn.abort?.();
        reject(gaveUp);
      }, THROTTLE_QUERY_DEADLINE_MILLIS);
    });
    value = await Promise.race([scalar(conn, statement), deadline]);
  } catch (err) {
    if (err === gaveUp) throw err;
    throw throttleQueryFailure(err, conn.name);
  } finally {
    clearTimeout(timer);
  }
  if (value === null) return null;
  if (value.trim() === '' || !Number.isFinite(Number(value))) throw new DatabaseError(`the throttle query failed on "${conn.name}": it returned no number (its first value must be a number; > 0 holds the copy)`);
  return value;
}
