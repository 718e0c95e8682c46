import { ID_OFFSET_FLOOR } from '../core/id-offset.ts';
import { count, diskWarning, formatSeconds, projectAws, secondsAt, type Plan, type PlanDeps, type PlanKnobs } from '../core/plan.ts';
import type { TableCopyInput } from '../core/table-copy-input.ts';
import { keyBounds } from '../core/tables/copier.ts';
import { windowNames } from '../core/tables/shadow.ts';
import { copyWindowTriggers } from '../core/tables/copy-window.ts';
import { copiedColumns, copyKeyShape, foreignKeysOf, hashColumns, tableBytes, triggersOn } from '../core/tables/inspector.ts';
import { binlogOn, diskNote, freeSpace, idsLine, rowsLine, rowsOf, tableBytesAtLeast, timedSample } from '../core/tables/plan-reads.ts';
import { copyKeyOf, throttleNow } from '../core/tables/chunked-copy.ts';
import { PartitionStore } from '../core/tables/partitions.ts';
import { seesOpenTransactions } from '../core/tables/horizon.ts';
import { MACHINE, type TableCopyState } from './open-migration.ts';
import { checkTableCopy } from './preflight.ts';

/** The fixed path of a table-copy on AWS (each task once, the Choices between), measured with `ferry local`'s usage line. */
const FIXED = { transitions: 18, invocations: 8 };

/**
 * `ferry plan table-copy`: Preflight's checks (InvalidInput when it would refuse), then what would
 * move, the disk it takes, how long and what it costs, the flags and approvals, and what to watch
 * out for. Reads only.
 */
export async function planTableCopy(input: TableCopyInput, deps: PlanDeps, knobs: PlanKnobs): Promise<Plan> {
  const { source, target, sourceInfo, targetInfo, checkpoint, copyKey: chosen } = await checkTableCopy(input, deps);
  const copyKey = chosen ?? copyKeyOf(checkpoint?.state, sourceInfo);
  const shape = copyKeyShape(sourceInfo, copyKey);
  const idName = copyKey.column;
  const warnings: string[] = [];
  const sameServer = source === target || source.serverKey === target.serverKey;
  const bounds = await keyBounds(source, input.source, shape);
  const rows = await rowsOf(source, input.source);
  const columns = copiedColumns(sourceInfo);
  const sourceId = sourceInfo.columns.find((c) => c.name === idName)!;
  const targetId = targetInfo.columns.find((c) => c.name === idName)!;
  const moves = [
    `${input.source.database}.${input.source.table} on "${source.name}" → ${input.target.database}.${input.target.table} on "${target.name}" ` +
      `(${sameServer ? 'one server: INSERT … SELECT, rows never leave it' : 'two servers: rows stream through ferry (LOAD DATA LOCAL INFILE where allowed)'})`,
    rowsLine('rows', rows),
    ...(shape.isInteger
      ? [
          idsLine(bounds.min, bounds.max, rows.rows),
          `${columns.length} columns; ${idName} ${sourceId.columnType} → ${targetId.columnType}`,
          `idOffset: ${input.idOffset ?? `chosen at the start from the source's insert rate (at least ${ID_OFFSET_FLOOR})`}; target AUTO_INCREMENT raised above the source's highest id plus it before any copy`,
        ]
      : [
          `keys (${shape.names}) ${bounds.min ?? '-'} … ${bounds.max ?? '-'}: chunks of rows in key order, each starting after the last key copied; rows the old table receives anywhere among them are found by comparing each range verified with what it held when delivered`,
          `${columns.length} columns; no id of ferry's to offset (an AUTO_INCREMENT column of the table's own, if any, is raised in the target as for an id)`,
        ]),
    `chunks of ${input.chunk.minRows}–${input.chunk.maxRows} ${shape.isInteger ? 'ids' : 'rows'} sized to ${input.chunk.targetMillis} ms; ${input.partitions === 1 ? 'one chunk loop' : `${input.partitions} partitions copied at once`}`,
    windowLine(input, shape.isInteger),
  ];

  let resumes: Plan['resumes'] = null;
  let left = BigInt(rows.rows);
  if (checkpoint) {
    const s = checkpoint.state;
    const planned = await new PartitionStore<TableCopyState>(target, input.target.database, input.migrationId, !shape.isInteger).all();
    const copied = BigInt(s.rowsCopied) + planned.reduce((n, p) => n + BigInt(p.state.rowsCopied), 0n);
    left = checkpoint.phase === 'prepare' || checkpoint.phase === 'copy' ? (left > copied ? left - copied : 0n) : 0n;
    resumes = {
      phase: checkpoint.phase,
      note: `${checkpoint.machine} checkpoint of ${checkpoint.updatedAt}: ${s.rowsCopied} rows copied${planned.length ? ` (and ${planned.length} partitions under way)` : ''}, up to ${shape.isInteger ? 'id' : 'key'} ${s.copiedUpTo ?? '(none)'}, verified up to ${s.verifiedUpTo ?? '(none)'}; owned by ${s.owner ?? 'no execution'}`,
    };
  }

  const size = await tableBytesAtLeast(source, input.source, shape, columns, bounds.min, rows.rows, await tableBytes(source, input.source));
  const free = await freeSpace(target, deps);
  const binlog = await binlogOn(target);
  const need = size === null ? null : (BigInt(size) * (binlog ? 2n : 1n)).toString();
  const diskProblem = checkpoint && checkpoint.phase !== 'prepare' && checkpoint.phase !== 'copy' ? null : diskWarning(need, free?.bytes ?? null, `a second copy of ${input.source.table} on "${target.name}"`);
  if (diskProblem) warnings.push(diskProblem);

  const sample = await timedSample(source, input.source, shape, hashColumns(sourceInfo, columns), bounds.min, deps.now);
  const copySeconds = secondsAt(sample, left);
  const polls = 2 * Math.ceil(input.catchUp.quietSeconds / input.catchUp.pollSeconds);
  const waits = 2 * input.catchUp.quietSeconds;
  const seconds = copySeconds === null ? (left === 0n ? waits : null) : copySeconds / input.partitions + waits;
  const throttle = await throttleNow(input, source, target, deps);
  if (throttle.throttled) warnings.push(`the throttle would hold the copy now: ${throttle.reason} (it waits ${throttle.waitSeconds} s and looks again)`);
  const estimateNote = sample
    ? `reading and checksumming ${sample.count} rows of the source took ${sample.millis} ms; ${left === BigInt(rows.rows) ? 'all' : count(left)} rows at that pace${input.partitions > 1 ? `, ${input.partitions} at once` : ''}, plus the quiet periods of the catch-up and the sweep (${input.catchUp.quietSeconds} s each). ` +
      'Writing the target comes on top, as do waits while throttled and the approvals'
    : left === 0n ? 'nothing left to copy' : 'the source has no row to time';

  const aws = projectAws({ fixedTransitions: FIXED.transitions, fixedInvocations: FIXED.invocations, loopSeconds: (copySeconds ?? 0) / input.partitions, parallel: input.partitions, polls });

  if (!shape.isInteger) {
    warnings.push(`${input.source.table} is copied by its key (${shape.names}), whose values need not grow: the catch-up, the re-verification and the sweep each read every range copied again (a checksum of the source's rows), and compare a range row by row where it changed`);
  } else if (!(await seesOpenTransactions(source))) {
    warnings.push(`"${source.name}"'s user lacks PROCESS and cannot see the server's open transactions: every hole in the ids stays in the ledger and the sweep probes it again, so a table with gaps costs more (GRANT PROCESS ON *.* TO ferry's user)`);
  }
  // the revert window's own triggers (a resumed run's) fire on no copied row
  const window = copyWindowTriggers(input.migrationId, input.target);
  const targetTriggers = (await triggersOn(target, input.target)).filter((t) => !window.some((w) => t.startsWith(`${w} (`)));
  if (targetTriggers.length) warnings.push(`${input.target.table} has triggers (${targetTriggers.join(', ')}): they fire on every copied row`);
  const targetFks = await foreignKeysOf(target, input.target);
  if (targetFks.length) warnings.push(`${input.target.table} has foreign keys (${targetFks.map((f) => f.name).join(', ')}): every copied row is checked against them, and a row whose parent is missing stops the copy`);
  if (input.cleanup.mode === 'truncate') warnings.push(`cleanup "truncate" empties ${input.source.table} at once after the cleanup approval, under a write lock that waits for its writers`);
  if (copySeconds !== null && copySeconds > 7 * 86_400) warnings.push(`the copy alone is estimated at ${formatSeconds(copySeconds)}: more partitions, or a larger chunk.targetMillis, shorten it`);

  return {
    machine: MACHINE,
    migrationId: input.migrationId,
    wouldRun: true,
    resumes,
    moves,
    counts: { rows: rows.rows, exact: rows.exact, minId: bounds.min, maxId: bounds.max, rowsLeft: left.toString(), sourceBytes: size, sameServer },
    disk: { needBytes: need, freeBytes: free?.bytes ?? null, note: diskNote(free, target.name, binlog, size) },
    estimate: { sample, seconds, note: estimateNote },
    aws: { ...aws, note: `${input.partitions === 1 ? 'one chunk loop' : `${input.partitions} partitions`}, copy invocations of at most 300 s, ${polls} polls while waiting for quiet; 1 GB Lambdas at us-east-1 2024 list prices` },
    flags: [
      { step: 'SetCopyFlags (after RaiseAutoIncrement, before the copy)', values: input.flags.copy },
      { step: 'SetCutoverFlags (after the cutover approval)', values: input.flags.cutover },
    ],
    approvals: [
      'cutover: after everything is copied and verified, before the cut-over flags',
      `cleanup: before ${input.cleanup.mode === 'none' ? 'the end (cleanup "none" keeps the source)' : input.cleanup.mode === 'truncate' ? `${input.source.table} is truncated` : shape.isInteger ? `${input.source.table}'s rows are deleted in batches of ${input.cleanup.batchRows}` : `${input.source.table}'s rows are deleted a span of the key ledger at a time, each checked as delivered under row locks`}`,
    ],
    knobs,
    warnings,
  };
}

/** What the revert window will do (see copy-window.ts). */
function windowLine(input: TableCopyInput, integer: boolean): string {
  if (!integer) return 'revert window: none for a key that is not one integer id (ferry revert compares every span of the ledger)';
  if (!input.revertWindow) return 'revert window: none (revertWindow false: ferry revert compares every span of the ledger)';
  const w = windowNames(input.migrationId, input.target);
  return `revert window: from the copy flags until the cleanup, triggers ${w.update}, ${w.delete}, ${w.insert} on ${input.target.table} log the id of each row the application updates, deletes or inserts (from its raised AUTO_INCREMENT up) into ${w.log.table}, so ferry revert compares only the spans they fall in (needs TRIGGER, and on a server with a binary log SUPER or log_bin_trust_function_creators; refused: no window, and the revert compares every span)`;
}
