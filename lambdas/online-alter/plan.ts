import { diskWarning, projectAws, secondsAt, type Plan, type PlanDeps, type PlanKnobs } from '../core/plan.ts';
import type { OnlineAlterInput } from '../core/online-alter-input.ts';
import { keyBounds } from '../core/tables/copier.ts';
import { copiedColumns, copyKeyColumns, copyKeyShape, hashColumns, inspectTable, tableBytes } from '../core/tables/inspector.ts';
import type { KeyShape } from '../core/keys.ts';
import { binlogOn, diskNote, freeSpace, idsLine, rowsLine, rowsOf, tableBytesAtLeast, timedSample } from '../core/tables/plan-reads.ts';
import { copyKeyOf, throttleNow } from '../core/tables/chunked-copy.ts';
import { ownTriggers } from '../core/tables/own-triggers.ts';
import { captureNames, shadowNames, windowNames } from '../core/tables/shadow.ts';
import { describeAlterCost, describeTransaction, longTransactions, measureOnScratch, type AlterCost } from '../core/tables/app-impact.ts';
import { MACHINE } from './open-alter.ts';
import { checkOnlineAlter } from './preflight.ts';

/** The fixed path of an online-alter on AWS (each task once, the Choices between), measured with `ferry local`'s usage line. */
const FIXED = { transitions: 12, invocations: 6 };

/**
 * `ferry plan online-alter`: Preflight's checks (InvalidInput when it would refuse; the ALTER is
 * tried on a scratch copy of up to 2,000 rows that is dropped at once, as Preflight does), then
 * what changes, the disk it takes, how long and what it costs, and what to watch out for.
 */
export async function planOnlineAlter(input: OnlineAlterInput, deps: PlanDeps, knobs: PlanKnobs): Promise<Plan> {
  const { conn, checkpoint, addedUniqueKeys, copyKey: chosen } = await checkOnlineAlter(input, deps);
  const t = input.table;
  const info = await inspectTable(conn, t);
  const copyKey = info ? (chosen ?? copyKeyOf(checkpoint?.state, info)) : null;
  const warnings: string[] = [];
  const { shadow, old } = shadowNames(t);
  const capture = captureNames(input.migrationId, t);
  let resumes: Plan['resumes'] = null;
  let rows = { rows: '0', exact: true };
  let bounds: { min: string | null; max: string | null } = { min: null, max: null };
  let sample: Plan['estimate']['sample'] = null;
  let left = 0n;
  let cost: AlterCost | null = null;
  let shape: KeyShape | null = null;
  const beforeTriggers = !checkpoint || checkpoint.phase === 'prepare' || checkpoint.phase === 'copy';
  if (checkpoint) {
    const s = checkpoint.state;
    resumes = { phase: checkpoint.phase, note: `checkpoint of ${checkpoint.updatedAt}: ${s.rowsCopied} rows copied up to ${s.copiedUpTo?.startsWith('[') ? 'key' : 'id'} ${s.copiedUpTo ?? '(none)'}, verified up to ${s.verifiedUpTo ?? '(none)'}${s.swappedAt ? `, swapped at ${s.swappedAt}` : ''}; owned by ${s.owner ?? 'no execution'}` };
  }
  if (info) {
    shape = copyKeyShape(info, copyKey!);
    rows = await rowsOf(conn, t);
    bounds = await keyBounds(conn, t, shape);
    sample = await timedSample(conn, t, shape, hashColumns(info, copiedColumns(info)), bounds.min, deps.now);
    left = !checkpoint || checkpoint.phase === 'prepare' || checkpoint.phase === 'copy' ? BigInt(rows.rows) - (checkpoint ? BigInt(checkpoint.state.rowsCopied) : 0n) : 0n;
    if (left < 0n) left = 0n;
    if (beforeTriggers) cost = await measureOnScratch(conn, input, info, copyKey!, deps.now);
  }
  const moves = [
    `${t.database}.${t.table} on "${conn.name}" altered in place: ALTER TABLE … ${input.alter.trim()}`,
    rowsLine('rows', rows),
    shape && !shape.isInteger ? `keys (${shape.names}) ${bounds.min ?? '-'} … ${bounds.max ?? '-'}: chunks of rows in key order, each starting after the last key copied` : idsLine(bounds.min, bounds.max, rows.rows),
    `shadow ${shadow.table} and capture log ${capture.log.table} created beside it; triggers ${capture.insert}, ${capture.update}, ${capture.delete} on ${t.table} until the swap`,
    `swap: RENAME TABLE ${t.table} → ${old.table}, ${shadow.table} → ${t.table} in one statement, waiting at most ${input.cutover.lockWaitSeconds} s for the lock, ${input.cutover.attempts} attempts`,
    `chunks of ${input.chunk.minRows}–${input.chunk.maxRows} ${shape && !shape.isInteger ? 'rows' : 'ids'} sized to ${input.chunk.targetMillis} ms${copyKey ? `, by ${copyKey.index === 'PRIMARY' ? 'the primary key' : `unique key ${copyKey.index}`} (${copyKeyColumns(copyKey).join(', ')})` : ''}`,
  ];
  const own = info ? await ownTriggers(conn, t) : [];
  if (input.revertWindow && !own.length) {
    const w = windowNames(input.migrationId, t);
    moves.push(`revert window: from the swap until the cleanup, triggers ${w.insert}, ${w.update}, ${w.delete} on the altered ${t.table} log the key of each row the application writes into ${w.log.table}, so ferry revert compares those rows alone (revertWindow false: none, and a revert compares the whole table)`);
  }
  if (own.length) {
    moves.push(
      `its own triggers ${own.map((tr) => `${tr.name} (${tr.timing} ${tr.event})`).join(', ')} move to the altered table at the swap, in that order, under LOCK TABLES ${t.table} WRITE (the application's writes wait for it: milliseconds), with stand-ins on ${t.table} until then`,
    );
  }
  const size = info ? await tableBytesAtLeast(conn, t, shape!, copiedColumns(info), bounds.min, rows.rows, await tableBytes(conn, t)) : await tableBytes(conn, t);
  const free = await freeSpace(conn, deps);
  const binlog = await binlogOn(conn);
  const need = size === null ? null : (BigInt(size) * (binlog ? 2n : 1n)).toString();
  const diskProblem = checkpoint && checkpoint.phase !== 'prepare' && checkpoint.phase !== 'copy' ? null : diskWarning(need, free?.bytes ?? null, `the shadow copy of ${t.table}`);
  if (diskProblem) warnings.push(diskProblem);
  const copied = cost && cost.copiedRows > 0 ? { unit: 'rows', count: cost.copiedRows, millis: cost.copyMillis } : null;
  const copySeconds = secondsAt(copied ?? sample, left);
  const throttle = await throttleNow(input, conn, conn, deps);
  if (throttle.throttled) warnings.push(`the throttle would hold the copy now: ${throttle.reason} (it waits ${throttle.waitSeconds} s and looks again)`);
  if (!checkpoint || checkpoint.phase === 'prepare' || checkpoint.phase === 'copy' || checkpoint.phase === 'verify' || checkpoint.phase === 'cutover-approval') {
    warnings.push(`three triggers on ${t.table} write every insert, update and delete of the application a second time (into the shadow) from CreateShadow until the swap: its writes get slower for that long`);
  }
  const waiting = await longTransactions(conn, input.cutover.lockWaitSeconds);
  if (waiting.length) {
    warnings.push(
      `${waiting.length} transaction${waiting.length > 1 ? 's are' : ' is'} open on the server for more than ${input.cutover.lockWaitSeconds} s (${waiting.slice(0, 3).map(describeTransaction).join('; ')}${waiting.length > 3 ? '; …' : ''}): ` +
        `one that has used ${t.table} holds CREATE TRIGGER and the swap's RENAME, each waiting ${input.cutover.lockWaitSeconds} s per attempt (${input.cutover.attempts} attempts) while the application's queries on ${t.table} queue behind it; let it end, or KILL it, first`,
    );
  }
  if (addedUniqueKeys.length) {
    warnings.push(`the ALTER adds unique key ${addedUniqueKeys.join(', ')} (allowNewUniqueKeys): the existing rows have no duplicates now, but a row the application writes during the migration that clashes is left out of the shadow and logged, and unless the clash goes away the migration stops before the swap`);
  }
  if (input.cleanup.mode === 'drop') warnings.push(`cleanup "drop" drops ${old.table} (the table as it was) in one statement after the cleanup approval`);
  const polls = 0;
  const aws = projectAws({ fixedTransitions: FIXED.transitions, fixedInvocations: FIXED.invocations, loopSeconds: copySeconds ?? 0, parallel: 1, polls });
  return {
    machine: MACHINE,
    migrationId: input.migrationId,
    wouldRun: true,
    resumes,
    moves,
    counts: { rows: rows.rows, exact: rows.exact, minId: bounds.min, maxId: bounds.max, rowsLeft: left.toString(), tableBytes: size },
    disk: { needBytes: need, freeBytes: free?.bytes ?? null, note: diskNote(free, conn.name, binlog, size) },
    estimate: {
      sample,
      seconds: copySeconds,
      note: copied
        ? `the copy's own code copied ${copied.count} rows of a scratch copy into its altered copy in ${copied.millis} ms; ${rows.exact ? '' : '~'}${left} rows at that pace` +
          `${sample ? ` (reading and checksumming ${sample.count} rows of the table took ${sample.millis} ms)` : ''}. Verification runs beside the copy on a session of its own; ` +
          `waits while throttled (Threads_running above ${input.throttle.maxThreadsRunning}${input.throttle.replica ? `, replica lag above ${input.throttle.replica.maxLagSeconds} s` : ''}${input.throttle.query ? ', the throttle query' : ''}; ${input.throttle.waitSeconds} s each) and the approvals come on top`
        : sample
          ? `reading and checksumming ${sample.count} rows took ${sample.millis} ms; ${rows.exact ? '' : '~'}${left} rows at that pace. Writing the shadow comes on top, as do waits while throttled and the approvals`
          : 'the table has no row to time',
    },
    aws: { ...aws, note: 'copy invocations of at most 300 s; 1 GB Lambdas at us-east-1 2024 list prices' },
    flags: [],
    approvals: [
      `cutover: after the copy is verified, before the swap (the only step the application sees)`,
      `cleanup: before ${input.cleanup.mode === 'none' ? 'the end (cleanup "none" keeps the old table)' : `${old.table} is ${input.cleanup.mode === 'drop' ? 'dropped' : `emptied in batches of ${input.cleanup.batchRows} and dropped`}`}`,
    ],
    knobs,
    warnings,
    application: cost ? describeAlterCost(cost, t.table) : [],
  };
}
