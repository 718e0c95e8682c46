import type { TaskDeps } from '../core/ports/task-deps.ts';
import type { SqlConnection } from '../core/ports/sql.ts';
import { DatabaseError, ERRNO, InvalidInput, RevertRefused, SwapFailed, VerificationFailed, type FerryError } from '../core/errors.ts';
import { qualified, type TableRef } from '../core/identifiers.ts';
import { checkThrottle, copyTables, loopState, nextVerifyKeys, outcomeState, reached, report, resizeChunk, save, timeLeft, type TaskEvent } from '../core/tables/chunked-copy.ts';
import { highestKey, keyOf, type CopyTables } from '../core/tables/copier.ts';
import { autoIncrementOf, copyKeyColumns, inspectTable, integerRange, uniqueIndexOnAll, type TableInfo } from '../core/tables/inspector.ts';
import { captureInto, captureKey, captureNames, columnMapping, dropTriggers, revertId, rewriteLogged, shadowNames, withShortLockWait, writeLateLogged, type CaptureKey, type ColumnMapping } from '../core/tables/shadow.ts';
import { allOn, closeWindow, dropWindowTriggers, forgetWindowEntries, logAgain, openWindow, windowEntries, windowInWords, windowOpen } from '../core/tables/revert-window.ts';
import { ownTriggers } from '../core/tables/own-triggers.ts';
import { dropTableIfExists, setAutoIncrement } from '../core/tables/table-writes.ts';
import { differingKeys, repairKeys, repairRange, rowHashesBothSides, writeFromSource } from '../core/tables/verifier.ts';
import { differingIds } from '../core/checksum.ts';
import type { KeyRange } from '../core/keys.ts';
import { whoHoldsTheTable } from '../core/tables/app-impact.ts';
import { lockOf, openAlter, type AlterMigration, type AlterRevert, type LoopState } from './open-alter.ts';
import { verifyAlterRange } from './verify.ts';

/**
 * The revert of an online-alter, asked instead of the cleanup (`ferry revert`): the original
 * table, kept as `_t_old` since the swap, is brought up to date with what the application wrote in
 * the altered table since, then swapped back in.
 *
 * 1. A table with triggers of its own refuses the revert (they are not moved back), and so does an
 *    ALTER after which the original has no unique key on the copy key's columns: RevertRefused,
 *    and the cleanup approval is asked for again.
 * 2. Capture: the same triggers as the forward run's, on the altered table (now `t`), write every
 *    write of the application into `_t_old` in the same transaction, columns mapped back.
 * 3. Compare `t` and `_t_old` range by range, each under one consistent snapshot, as Verify does;
 *    a range that differs (a row written, changed or deleted since the swap) is made the altered
 *    table's again in `_t_old`. A range the original refuses is looked at again once every range
 *    was compared (see AlterRevert.deferred); a row it still refuses (a value its column cannot
 *    hold, a duplicate on a unique key the ALTER dropped) takes back the triggers and refuses the
 *    revert, naming the rows, with nothing swapped.
 * 4. Swap back: the capture log written again, `_t_old`'s AUTO_INCREMENT raised to the altered
 *    table's, one atomic `RENAME TABLE t TO _t_new, _t_old TO t` under the short lock wait.
 * 5. The capture triggers dropped, writes they could not carry in the last instant written to the
 *    original, and the altered table dropped. Phase `reverted`; the same input may run again.
 */

/**
 * The most keys a range of the revert's comparison spans. Nearly every range holds a write of the
 * application's since the swap, and its repair holds the range's rows locked while it runs: a range
 * sized by time like the copy's (up to 100,000 rows) held the application's writes half a second.
 */
export const REVERT_SPAN = 1000;

interface Back {
  /** The altered table (`t`) as the source, the original (`_t_old`) as the target, columns mapped back. */
  readonly tables: CopyTables;
  readonly mapping: ColumnMapping;
  readonly key: CaptureKey;
  readonly altered: TableInfo;
}

/** What the revert copies by: the copy key's columns, through the altered table's unique index on them (the ALTER must keep one). */
async function backTables(m: AlterMigration, on: TableRef, original: TableRef): Promise<Back> {
  const conn = m.source;
  const [altered, old] = [await inspectTable(conn, on), await inspectTable(conn, original)];
  if (!altered || !old) throw new InvalidInput('migrationId', `${m.input.migrationId}: ${altered ? original.table : on.table} is gone; the revert needs the altered table and the original (${shadowNames(m.input.alter.table).old.table})`);
  const forward = columnMapping(old, altered, m.input.alter.alter);
  const mapping = { source: forward.target, target: forward.source };
  const copyKey = m.state.copyKey!;
  const columns = copyKeyColumns(copyKey);
  const index = uniqueIndexOnAll(altered, columns);
  const key = captureKey(altered, old, mapping, columns);
  if (!index || !key) throw new VerificationFailed(`${index ? original.table : on.table} has no unique key on (${columns.join(', ')}) alone, the key the migration copies by`);
  const connection = m.input.alter.table.connection;
  const settings = { ...m.input, source: { connection, ...on }, target: { connection, ...original } };
  const { orderedBy: _ordered, ...whole } = copyKey;
  const tables = { ...copyTables(settings, conn, conn, altered, old, () => mapping, m.state.rowHash ?? 'md5', { ...whole, index }), readLock: true, ...(m.deps.stopping ? { stopping: m.deps.stopping } : {}) };
  return { tables, mapping, key, altered };
}

/** Why the original refuses rows of a range (at most 10): each row that differs tried alone, in a transaction rolled back at once. */
async function refusedRows(conn: SqlConnection, t: CopyTables, range: KeyRange): Promise<string[]> {
  const key = keyOf(t);
  const [inSource, inTarget] = await rowHashesBothSides({ ...t, source: conn, target: conn }, range);
  const out: string[] = [];
  for (const d of differingIds(inSource, inTarget, 1000).filter((x) => x.problem !== 'extra in target')) {
    const undo = new Error('rolled back');
    await conn
      .transaction(async (tx) => {
        const it = key.equals(d.id);
        await tx.execute(`DELETE FROM ${qualified(t.targetTable)} WHERE ${it.sql}`, it.params);
        try {
          await writeFromSource(tx, t, [d.id]);
        } catch (err) {
          if (!(err instanceof DatabaseError)) throw err;
          out.push(`${key.isInteger ? 'id' : 'key'} ${d.id}: ${err.message.replace(/^[^:]*: statement failed: /, '')}`);
        }
        throw undo;
      })
      .catch((err) => {
        if (err !== undo) throw err;
      });
    if (out.length >= 10) break;
  }
  return out;
}

/** What a refusal that no fix of rows lifts says to do. */
const NO_REVERT = 'Approve the cleanup, or go back by hand (an ALTER TABLE of the table).';

/**
 * Takes back what the revert made, forgets it, and refuses: the cleanup approval is asked for
 * again. A revert window it began from is given back first (its triggers on the table again
 * before the revert's go, so no write falls between; the rows set aside logged again), and keeps
 * its log, unless the refusal is one no fix of rows lifts (NO_REVERT): then the window closes too.
 * Otherwise the revert's triggers go, then its log.
 */
async function refuse(m: AlterMigration, why: string, advice = 'Fix those rows and revert again, or approve the cleanup.'): Promise<never> {
  const t = m.input.alter.table;
  const conn = m.source;
  const lock = lockOf(m.input.alter, m.deps);
  const r = m.state.revert;
  const id = revertId(m.input.migrationId);
  // a refusal no fix of rows lifts closes the window: it would log for a revert that cannot happen
  const keepWindow = advice !== NO_REVERT && (r?.fromLog === true || (await windowOpen(conn, m.input.migrationId, t)));
  if (advice === NO_REVERT) await closeWindow(conn, m.input.migrationId, t, lock);
  if (keepWindow) {
    const back = await backTables(m, t, shadowNames(t).old).catch(() => null);
    if (r?.fromLog && back) await openWindow(conn, m.input.migrationId, t, t, keyColumnsOf(m, back), lock);
    if (back && r?.deferred?.length) await logAgain(conn, m.input.migrationId, t, keyOf(back.tables), r.deferred.map((x) => x.hi));
  }
  await withShortLockWait(conn, lock, () => dropTriggers(conn, id, t));
  if (!keepWindow) await dropTableIfExists(conn, captureNames(id, t).log);
  m.state.revert = null;
  await save(m, 'cleanup-approval');
  const message = `revert refused: ${why} Nothing was swapped: ${t.table} is still the altered table, serving. ${advice}`;
  report(m, message);
  throw new RevertRefused(message);
}

/** Whether the swap back happened: the original is `t` again (no `_t_old`), the altered table beside it as `_t_new`. */
async function swappedBack(conn: SqlConnection, t: TableRef): Promise<boolean> {
  const { shadow, old } = shadowNames(t);
  return !(await inspectTable(conn, old)) && (await inspectTable(conn, shadow)) !== null;
}

/** `_t_old`'s AUTO_INCREMENT raised to the altered table's when that is higher (and the original's column can hold it), then the atomic RENAME back. */
async function swapBack(conn: SqlConnection, t: TableRef, back: Back): Promise<void> {
  const { shadow, old } = shadowNames(t);
  const [mine, theirs] = [await autoIncrementOf(conn, old), await autoIncrementOf(conn, t)];
  // the key's columns keep their names through the ALTER
  const column = (await inspectTable(conn, old))!.columns.find((c) => c.name.toLowerCase() === back.tables.idColumn.toLowerCase());
  const range = column ? integerRange(column) : null;
  if (theirs !== null && mine !== null && BigInt(theirs) > BigInt(mine) && (!range || BigInt(theirs) <= range.max)) await setAutoIncrement(conn, old, BigInt(theirs));
  await conn.execute(`RENAME TABLE ${qualified(t)} TO ${qualified(shadow)}, ${qualified(old)} TO ${qualified(t)}`);
}

export async function revert(event: TaskEvent & { cause?: string | null }, deps: TaskDeps): Promise<LoopState> {
  const m = await openAlter(event, deps);
  if (m.phase === 'reverted') return loopState(m, { done: true });
  const input = m.input.alter;
  const t = input.table;
  const { shadow, old } = shadowNames(t);
  const conn = m.source;
  const id = revertId(input.migrationId);
  if (m.phase !== 'revert') {
    if (m.phase !== 'cleanup-approval') throw new InvalidInput('migrationId', `${input.migrationId} is in phase ${m.phase}: only a migration waiting for its cleanup approval can be reverted`);
    m.state.revert = {
      askedBy: event.cause ?? null, startedAt: new Date(deps.now()).toISOString(), captureSince: null, verifyUpTo: null, verifiedUpTo: null,
      rangesVerified: 0, rowsVerified: '0', rangesRepaired: 0, rowsWrittenBack: 0, swappedBackAt: null,
    };
    await save(m, 'revert');
    report(m, `reverting: bringing ${old.table} up to date with what the application wrote in ${t.table} since the swap, then swapping it back`);
  }
  const r = m.state.revert!;
  if (!r.swappedBackAt && !(await swappedBack(conn, t))) {
    const back = await catchUp(m, r, id);
    if (back === false) return loopState(m, { done: false });
    if ('phase' in back) return back;
    const lock = lockOf(input, deps);
    try {
      await withShortLockWait(conn, lock, async () => {
        // right before each attempt: a write the triggers could not carry since is met here, before the swap
        r.rowsWrittenBack += await rewriteLogged(conn, id, back.tables);
        await swapBack(conn, t, back);
      }, async (attempt, backoff) => report(m, `reverting: swap attempt ${attempt}/${lock.attempts}: another session holds a lock on ${t.table} (waited ${lock.seconds} s)${await whoHoldsTheTable(conn, lock.seconds)}; ${t.table} is unchanged and serving; retrying in ${backoff} s`));
    } catch (err) {
      if (err instanceof VerificationFailed) return refuse(m, err.message);
      if ((err as FerryError).errno !== ERRNO.LOCK_WAIT_TIMEOUT) throw err;
      await save(m);
      throw new SwapFailed(`the RENAME back could not get the lock on ${t.table} in ${lock.attempts} attempts of ${lock.seconds} s; ${t.table} is unchanged (the altered table) and serving, its writes still carried to ${old.table}. Find the long transaction (SHOW PROCESSLIST) and run the migration again: the revert resumes.`);
    }
  }
  if (!r.swappedBackAt) {
    r.swappedBackAt = new Date(deps.now()).toISOString();
    await save(m);
    report(m, `reverting: swapped back: ${t.table} is the original table again; the altered one is ${shadow.table}`);
  }
  // The triggers are on the altered table now (renamed with it), which nothing writes any more; their names are the ones made for `t`.
  await withShortLockWait(conn, lockOf(input, deps), () => dropTriggers(conn, id, t));
  await settleLateLogged(m, id);
  await dropTableIfExists(conn, captureNames(id, t).log);
  await dropTableIfExists(conn, shadow);
  await save(m, 'reverted');
  report(m, `reverted: ${t.table} is the original table, with every write the application made since the swap (${r.rangesRepaired} ranges repaired, ${r.rowsWrittenBack} rows written again from the capture log); the altered table was dropped`);
  return loopState(m, { done: true });
}

/**
 * Steps 1 to 3: the refusal's checks, the capture into the original, and the comparison, as far as
 * the budget goes. The tables once every range is equal; false to be called again; a LoopState when
 * throttled.
 */
async function catchUp(m: AlterMigration, r: AlterRevert, id: string): Promise<Back | false | LoopState> {
  const input = m.input.alter;
  const t = input.table;
  const { old } = shadowNames(t);
  const conn = m.source;
  let back: Back;
  try {
    back = await backTables(m, t, old);
  } catch (err) {
    if (err instanceof VerificationFailed) return refuse(m, `${err.message} (an ALTER that changes the key the copy goes by, such as a wider primary key, cannot be reverted).`, NO_REVERT);
    throw err;
  }
  if (r.captureSince === null) {
    const own = await ownTriggers(conn, t);
    if (own.length) return refuse(m, `${t.table} has triggers of its own (${own.map((tr) => tr.name).join(', ')}), which a revert does not move back.`, NO_REVERT);
    // decided before the revert's triggers are made: the window's log names every row written since the swap only while its triggers are on
    r.fromLog = await windowOpen(conn, input.migrationId, t);
    await captureInto(conn, id, t, old, keyColumnsOf(m, back), back.key, back.mapping, lockOf(input, m.deps), async (attempt, backoff) => report(m, `reverting: another session holds a lock on ${t.table}; the triggers' attempt ${attempt} waits ${backoff} s`));
    r.captureSince = new Date(m.deps.now()).toISOString();
    // every write from here on reaches the original through the triggers; what was there before, up to the highest key, is compared (without a window)
    if (!r.fromLog) r.verifyUpTo = await highestKey(conn, [t, old], keyOf(back.tables));
    await save(m);
    report(m, r.fromLog
      ? `reverting: ${t.table}'s writes are carried to ${old.table}; comparing the rows the application wrote since the swap (the revert window's log)`
      : `reverting: ${t.table}'s writes are carried to ${old.table}; comparing the two (no revert window was open: every row)`);
  } else {
    const names = captureNames(id, t);
    if (!(await allOn(conn, t, [names.insert, names.update, names.delete]))) {
      // A refusal stopped after it took the revert's triggers off, before it recorded itself: they are made again, after a look at what
      // carried the application's writes meanwhile. The window, given back first: its log names them. Nothing: the comparison starts over.
      const logged = r.fromLog && (await windowOpen(conn, input.migrationId, t));
      await captureInto(conn, id, t, old, keyColumnsOf(m, back), back.key, back.mapping, lockOf(input, m.deps));
      if (!logged) {
        r.fromLog = false;
        r.verifiedUpTo = null;
        r.verifyUpTo = await highestKey(conn, [t, old], keyOf(back.tables));
      }
      await save(m);
      report(m, `reverting: the revert's triggers on ${t.table}, taken off by a refusal that was stopped, are made again${logged ? '' : '; comparing every row again'}`);
    }
  }
  if (r.fromLog) {
    const logged = await fromWindowLog(m, r, back);
    if (logged !== true) return logged;
  }
  // nextVerifyKeys and reached read the tables through a migration: this one's, with the tables the other way round
  const view = { ...m, tables: back.tables, input: { ...m.input, source: t, target: { connection: t.connection, ...old } } };
  m.state.chunkSpan = Math.min(m.state.chunkSpan, REVERT_SPAN);
  while (r.verifyUpTo !== null && !reached(view, r.verifiedUpTo, r.verifyUpTo)) {
    if (!timeLeft(m)) return false;
    const decision = await checkThrottle(m);
    if (decision.throttled) return outcomeState(m, { kind: 'throttled', reason: decision.reason, waitSeconds: decision.waitSeconds });
    const range = await nextVerifyKeys(view, r.verifiedUpTo, r.verifyUpTo);
    if (range === null) break;
    const started = m.deps.now();
    let verdict: { rows: string; repairs: number };
    try {
      verdict = await verifyAlterRange(conn, back.tables, id, range);
    } catch (err) {
      if (!(err instanceof VerificationFailed)) throw err;
      // looked at again at the end (see AlterRevert.deferred)
      (r.deferred ??= []).push(range);
      if (r.deferred.length > MAX_DEFERRED) return refuseRanges(m, back.tables, r.deferred.slice(0, 10));
      verdict = { rows: '0', repairs: 0 };
    }
    resizeChunk(m, m.deps.now() - started);
    m.state.chunkSpan = Math.min(m.state.chunkSpan, REVERT_SPAN);
    r.verifiedUpTo = range.hi;
    r.rangesVerified += 1;
    r.rowsVerified = (BigInt(r.rowsVerified) + BigInt(verdict.rows)).toString();
    r.rangesRepaired += verdict.repairs;
    await save(m);
    report(m, `reverting: compared ${keyOf(back.tables).isInteger ? 'ids' : 'keys'} ${keyOf(back.tables).describe(range)}: ${verdict.rows} rows equal${verdict.repairs ? ` (${verdict.repairs} repaired)` : ''}`);
  }
  if (r.deferred?.length) {
    // first every old copy of the rows those ranges differ in goes, then their rows are written: what still clashes is a row the original cannot hold
    for (const range of r.deferred) await repairRange(conn, { ...back.tables, source: conn, target: conn }, range, undefined, { writeBack: false });
    const still: KeyRange[] = [];
    for (const range of r.deferred) {
      try {
        const verdict = await verifyAlterRange(conn, back.tables, id, range);
        r.rangesRepaired += verdict.repairs;
      } catch (err) {
        if (!(err instanceof VerificationFailed)) throw err;
        still.push(range);
      }
    }
    if (still.length) return refuseRanges(m, back.tables, still);
    report(m, `reverting: ${r.deferred.length} ranges whose rows held each other's unique values written`);
    r.deferred = [];
    await save(m);
  }
  return back;
}

/** The altered table's columns of the copy key (their names are the same in the original). */
function keyColumnsOf(m: AlterMigration, back: Back) {
  return copyKeyColumns(m.state.copyKey!).map((c) => back.altered.columns.find((x) => x.name.toLowerCase() === c.toLowerCase())!);
}

/** Log entries read at a time by the revert: their rows are compared under one snapshot. */
const WINDOW_BATCH = 500;

/** Rows of the window repaired in one transaction: the application's writes to them wait for it. */
const REPAIR_KEYS = 100;

/**
 * The comparison of a revert begun from an open window: the window's triggers go (the revert's
 * carry every write now), then the log is read oldest first, a batch at a time; the rows it names
 * are compared under one snapshot, and each that differs is made the altered table's again in the
 * original (set aside as `deferred` when the original refuses it); then the batch's entries are
 * forgotten. The rest of the table was compared before the swap and nothing has written either copy
 * of it since. True once the log is empty; false to be called again; a LoopState when throttled.
 */
async function fromWindowLog(m: AlterMigration, r: AlterRevert, back: Back): Promise<true | false | LoopState> {
  const t = m.input.alter.table;
  const conn = m.source;
  await withShortLockWait(conn, lockOf(m.input.alter, m.deps), () => dropWindowTriggers(conn, m.input.migrationId, t));
  const tables = { ...back.tables, source: conn, target: conn };
  const key = keyOf(back.tables);
  for (;;) {
    if (!timeLeft(m)) return false;
    const decision = await checkThrottle(m);
    if (decision.throttled) return outcomeState(m, { kind: 'throttled', reason: decision.reason, waitSeconds: decision.waitSeconds });
    const batch = await windowEntries(conn, m.input.migrationId, t, key, WINDOW_BATCH);
    if (batch.seqs.length === 0) return true;
    let repaired = 0;
    const differing = await differingKeys(conn, back.tables, batch.keys);
    for (let i = 0; i < differing.length; i += REPAIR_KEYS) {
      const these = differing.slice(i, i + REPAIR_KEYS);
      const n = await repairKeys(conn, tables, these);
      if (n !== null) {
        repaired += n;
        continue;
      }
      // a row locked by the application, or one the original refuses: key by key
      for (const k of these) {
        const only = { lo: k, hi: k };
        try {
          await repairRange(conn, tables, only);
          repaired += 1;
        } catch (err) {
          if (!(err instanceof VerificationFailed)) throw err;
          (r.deferred ??= []).push(only);
          if (r.deferred.length > MAX_DEFERRED) return refuseRanges(m, back.tables, r.deferred.slice(0, 10));
        }
      }
    }
    r.rangesVerified += 1;
    r.rowsVerified = (BigInt(r.rowsVerified) + BigInt(batch.keys.length)).toString();
    r.rangesRepaired += repaired;
    r.rowsWrittenBack += repaired;
    // the rows set aside are in the checkpoint before their entries go
    await save(m);
    await forgetWindowEntries(conn, m.input.migrationId, t, batch.seqs);
    report(m, `reverting: compared ${batch.keys.length} rows the application wrote since the swap${repaired ? ` (${repaired} written back)` : ''}`);
  }
}

/** Ranges set aside for a second look before the revert is refused as one the original cannot take. */
const MAX_DEFERRED = 1000;

/** Refuses the revert, naming the rows of these ranges the original refuses. */
async function refuseRanges(m: AlterMigration, tables: CopyTables, ranges: readonly KeyRange[]): Promise<never> {
  const t = m.input.alter.table;
  const rows: string[] = [];
  for (const range of ranges) if (rows.length < 10) rows.push(...(await refusedRows(m.source, tables, range)));
  const key = keyOf(tables);
  return refuse(m, rows.length ? `${shadowNames(t).old.table} cannot hold rows the application wrote in ${t.table}: ${rows.slice(0, 10).join('; ')}.` : `${shadowNames(t).old.table} refuses rows of ${key.isInteger ? 'ids' : 'keys'} ${ranges.map((x) => key.describe(x)).join(', ')} of ${t.table}.`);
}

/**
 * Writes the triggers could not carry into the original in the last instant before the RENAME
 * (see writeLateLogged); one the original refuses fails the task, naming it, and the altered table
 * is kept.
 */
async function settleLateLogged(m: AlterMigration, id: string): Promise<void> {
  const t = m.input.alter.table;
  const { shadow } = shadowNames(t);
  if (!(await inspectTable(m.source, captureNames(id, t).log))) return;
  const back = await backTables(m, shadow, t);
  const refused = await writeLateLogged(m.source, id, t, back.tables);
  if (refused.length) {
    const key = keyOf(back.tables);
    throw new VerificationFailed(
      `${t.table} was swapped back to the original, but rows the application wrote just before could not be written to it: ${key.isInteger ? 'ids' : `keys (${key.names})`} ${refused.slice(0, 10).join(', ')}. ` +
        `They are in ${shadow.table}, which is kept; write them to ${t.table} by hand.`,
    );
  }
}

/**
 * Beside a pending cleanup approval, on AWS (see scheduledReverify): how far the original table
 * trails the altered one, from the revert window's log (see windowInWords). Reads only.
 */
export async function originalBehind(event: TaskEvent, deps: TaskDeps): Promise<{ note: string }> {
  const m = await openAlter(event, deps);
  if (m.phase !== 'cleanup-approval') return { note: `no cleanup approval is pending (phase ${m.phase})` };
  const t = m.input.alter.table;
  return { note: (await windowInWords(m.source, m.input.migrationId, t)) ?? `no revert window is open on ${t.database}.${t.table}: a revert would compare every row of it with ${shadowNames(t).old.table}` };
}
