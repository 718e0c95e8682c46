import type { TaskDeps } from '../core/ports/task-deps.ts';
import { scalar, type SqlConnection } from '../core/ports/sql.ts';
import { InvalidInput } from '../core/errors.ts';
import { qualified } from '../core/identifiers.ts';
import { identityOf, type TableCopyInput } from '../core/table-copy-input.ts';
import { CheckpointStore } from '../core/checkpoints.ts';
import { idBounds } from '../core/tables/copier.ts';
import { databaseExists, inspectTable, integerRange, type TableInfo } from '../core/tables/inspector.ts';
import { throttleQueryValue } from '../core/tables/probes.ts';
import { initialChunkRows } from '../core/chunker.ts';
import { claimOwnership } from '../core/ownership.ts';
import { connectBoth, MACHINE, parseTableCopyInput, type LoopState, type Phase, type TableCopyState, type TaskEvent } from './open-migration.ts';

async function requireTable(conn: SqlConnection, side: 'source' | 'target', ref: { database: string; table: string }): Promise<TableInfo> {
  if (!(await databaseExists(conn, ref.database))) {
    throw new InvalidInput(`${side}.database`, `database ${ref.database} does not exist on connection "${conn.name}"; create it or fix the name`);
  }
  const info = await inspectTable(conn, ref);
  if (!info) {
    throw new InvalidInput(`${side}.table`, `table ${ref.database}.${ref.table} does not exist on connection "${conn.name}"; create it (same columns, wider id) or fix the name`);
  }
  return info;
}

/**
 * Every check that can refuse the input, in the order an operator would fix them.
 * Reads only: nothing is written until all of them pass.
 */
export async function checkTables(input: TableCopyInput, source: SqlConnection, target: SqlConnection): Promise<{ sourceInfo: TableInfo; targetInfo: TableInfo }> {
  const sourceInfo = await requireTable(source, 'source', input.source);
  const targetInfo = await requireTable(target, 'target', input.target);
  if (sourceInfo.primaryKey.length !== 1) {
    throw new InvalidInput('source.table', `primary key of ${input.source.table} is ${sourceInfo.primaryKey.length === 0 ? 'missing' : `(${sourceInfo.primaryKey.join(', ')})`}; ferry copies tables keyed by one integer column`);
  }
  const idName = sourceInfo.primaryKey[0]!;
  const sourceId = sourceInfo.columns.find((c) => c.name === idName)!;
  const sourceRange = integerRange(sourceId);
  if (!sourceRange) {
    throw new InvalidInput('source.table', `primary key ${idName} of ${input.source.table} is ${sourceId.columnType}, not an integer; ferry copies tables keyed by one integer column`);
  }
  if (targetInfo.primaryKey.length !== 1 || targetInfo.primaryKey[0] !== idName) {
    throw new InvalidInput('target.table', `primary key of ${input.target.table} must be the single column ${idName}, like the source's (it is ${targetInfo.primaryKey.join(', ') || 'missing'})`);
  }
  const targetColumns = new Map(targetInfo.columns.map((c) => [c.name, c]));
  const missing = sourceInfo.columns.filter((c) => !c.generated && (!targetColumns.has(c.name) || targetColumns.get(c.name)!.generated));
  if (missing.length > 0) {
    throw new InvalidInput('target.table', `${input.target.table} lacks source column(s) ${missing.map((c) => c.name).join(', ')}; add them to the target`);
  }
  const targetRange = integerRange(targetColumns.get(idName)!);
  if (!targetRange) {
    throw new InvalidInput('target.table', `${idName} of ${input.target.table} is ${targetColumns.get(idName)!.columnType}, not an integer`);
  }
  const { min } = await idBounds(source, input.source, idName);
  const needMax = sourceRange.max + BigInt(input.idOffset);
  const needMin = min === null ? 0n : BigInt(min);
  if (targetRange.max < needMax || targetRange.min > needMin) {
    throw new InvalidInput(
      'target.table',
      `${idName} of ${input.target.table} is ${targetColumns.get(idName)!.columnType}, too small for source ids of type ${sourceId.columnType}` +
        ` plus idOffset ${input.idOffset} (up to ${needMax}${needMin < 0n ? `, down to ${needMin}` : ''}); widen it, e.g. BIGINT UNSIGNED`,
    );
  }
  return { sourceInfo, targetInfo };
}

/** First task: validate everything, then create the checkpoint (or find it) and say which phase to run. */
export async function preflight(event: TaskEvent, deps: TaskDeps): Promise<LoopState> {
  const input = parseTableCopyInput(event.migration);
  const { source, target } = await connectBoth(input, deps);
  if (input.throttle.replica) await deps.sql.connect(input.throttle.replica.connection);
  if (input.cleanup.mode === 'truncate' && !source.sessions) {
    throw new InvalidInput('cleanup.mode', `"truncate" locks the source table, which "${source.name}" (RDS Data API) cannot hold between calls; use "trickle-delete"`);
  }
  const { sourceInfo } = await checkTables(input, source, target);
  if (input.throttle.query) {
    try {
      await throttleQueryValue(source, input.throttle.query);
    } catch (err) {
      throw new InvalidInput('throttle.query', `the throttle query fails on "${source.name}": ${(err as Error).message}`);
    }
  }
  const store = new CheckpointStore<TableCopyState>(target, input.target.database, MACHINE);
  const identity = identityOf(input);
  let checkpoint = await store.load(input.migrationId, identity);
  const me = event.execution ?? 'unnamed execution';
  if (checkpoint) {
    await claimOwnership(input.migrationId, checkpoint.state.owner, me, event.state?.handedOverBy, (id) => deps.executions.isRunning(id));
    if (checkpoint.state.owner !== me) await store.save(input.migrationId, checkpoint.phase, { ...checkpoint.state, owner: me });
  } else {
    const targetRows = await scalar(target, `SELECT COUNT(*) FROM (SELECT 1 FROM ${qualified(input.target)} LIMIT 1) AS any_row`);
    if (targetRows !== '0') {
      throw new InvalidInput(
        'target.table',
        `${input.target.database}.${input.target.table} already holds rows but has no checkpoint for "${input.migrationId}"; ` +
          'empty it, or resume with the migrationId and input that filled it',
      );
    }
    const idName = sourceInfo.primaryKey[0]!;
    const bounds = await idBounds(source, input.source, idName);
    const estimate = await scalar(source, 'SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [input.source.database, input.source.table]);
    const now = new Date(deps.now()).toISOString();
    checkpoint = await store.create(input.migrationId, identity, 'prepare', {
      startedAt: now,
      rangeMin: bounds.min,
      rangeMax: bounds.max,
      estimatedRows: estimate ?? '0',
      copiedUpTo: null,
      rowsCopied: '0',
      chunkRows: initialChunkRows(input.chunk),
      autoIncrement: null,
      quietSince: null,
      verifiedUpTo: null,
      rangesVerified: 0,
      rowsVerified: '0',
      rangesRepaired: 0,
      cleanedUpTo: null,
      rowsDeleted: '0',
      throttledMillis: 0,
      phaseStartedAt: { prepare: now },
      owner: me,
    });
  }
  const s = checkpoint.state;
  return {
    phase: checkpoint.phase as Phase,
    done: false,
    waitSeconds: 0,
    throttle: null,
    iterations: 0,
    continueAsNew: false,
    progress: { rowsCopied: s.rowsCopied, estimatedRows: s.estimatedRows, copiedUpTo: s.copiedUpTo, rowsDeleted: s.rowsDeleted },
  };
}
