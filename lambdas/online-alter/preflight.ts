import type { TaskDeps } from '../core/ports/task-deps.ts';
import { scalar, str, type SqlConnection } from '../core/ports/sql.ts';
import { CheckpointStore } from '../core/checkpoints.ts';
import { initialChunkRows } from '../core/chunker.ts';
import { InvalidInput } from '../core/errors.ts';
import { qualified, type TableRef } from '../core/identifiers.ts';
import { alterIdentityOf, type OnlineAlterInput } from '../core/online-alter-input.ts';
import { idBounds } from '../core/tables/copier.ts';
import { databaseExists, inspectTable, integerRange, type TableInfo } from '../core/tables/inspector.ts';
import { throttleQueryValue } from '../core/tables/probes.ts';
import type { TaskEvent } from '../core/tables/chunked-copy.ts';
import { claimOwnership } from '../core/ownership.ts';
import { shadowNames } from '../core/tables/shadow.ts';
import { MACHINE, parseOnlineAlterInput, type LoopState, type OnlineAlterState, type Phase } from './open-alter.ts';

/** Foreign keys of other tables that point at this one: a swap would leave them on the old table. */
async function referencingForeignKeys(conn: SqlConnection, t: TableRef): Promise<string[]> {
  const rows = await conn.query(
    `SELECT CONSTRAINT_SCHEMA AS db, TABLE_NAME AS tbl, CONSTRAINT_NAME AS name, COLUMN_NAME AS col
       FROM information_schema.KEY_COLUMN_USAGE WHERE REFERENCED_TABLE_SCHEMA = ? AND REFERENCED_TABLE_NAME = ?
      ORDER BY CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME`,
    [t.database, t.table],
  );
  return rows.map((r) => `${str(r, 'name')} on ${str(r, 'db')}.${str(r, 'tbl')}(${str(r, 'col')}) — drop it first: ALTER TABLE \`${str(r, 'db')}\`.\`${str(r, 'tbl')}\` DROP FOREIGN KEY \`${str(r, 'name')}\``);
}

async function triggersOn(conn: SqlConnection, t: TableRef): Promise<string[]> {
  const rows = await conn.query('SELECT TRIGGER_NAME AS name, ACTION_TIMING AS timing, EVENT_MANIPULATION AS event FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?', [t.database, t.table]);
  return rows.map((r) => `${str(r, 'name')} (${str(r, 'timing')} ${str(r, 'event')})`);
}

/**
 * Applies the ALTER to an empty scratch copy of the table, so the database itself judges it, and
 * removes the scratch table whatever happens. Returns the altered table's shape.
 */
async function tryAlter(conn: SqlConnection, input: OnlineAlterInput): Promise<TableInfo> {
  const scratch = { database: input.table.database, table: `_${input.table.table}_chk` };
  await conn.execute(`DROP TABLE IF EXISTS ${qualified(scratch)}`);
  try {
    await conn.execute(`CREATE TABLE ${qualified(scratch)} LIKE ${qualified(input.table)}`);
    try {
      await conn.execute(`ALTER TABLE ${qualified(scratch)} ${input.alter}`);
    } catch (err) {
      throw new InvalidInput('alter', `the database refused it: ${(err as Error).message.replace(/^[^:]*: statement failed: /, '')}; fix the clause`);
    }
    return (await inspectTable(conn, scratch))!;
  } finally {
    await conn.execute(`DROP TABLE IF EXISTS ${qualified(scratch)}`);
  }
}

/** Every check that can refuse the input, before anything lasting is written. */
async function checkTable(conn: SqlConnection, input: OnlineAlterInput): Promise<void> {
  const t = input.table;
  if (!(await databaseExists(conn, t.database))) throw new InvalidInput('table.database', `database ${t.database} does not exist on connection "${conn.name}"; fix the name`);
  const info = await inspectTable(conn, t);
  if (!info) throw new InvalidInput('table.table', `table ${t.database}.${t.table} does not exist on connection "${conn.name}"; fix the name`);
  const idName = info.primaryKey[0];
  const idColumn = info.columns.find((c) => c.name === idName);
  if (info.primaryKey.length !== 1 || !idColumn || !integerRange(idColumn)) {
    throw new InvalidInput('table.table', `primary key of ${t.table} is ${info.primaryKey.length ? `(${info.primaryKey.join(', ')})` : 'missing'}; ferry alters tables keyed by one integer column`);
  }
  const fks = await referencingForeignKeys(conn, t);
  if (fks.length) throw new InvalidInput('table.table', `foreign keys point at ${t.table}, and would stay on the old table after the swap: ${fks.join('; ')}`);
  const triggers = await triggersOn(conn, t);
  if (triggers.length) throw new InvalidInput('table.table', `${t.table} has triggers of its own (${triggers.join(', ')}); ferry captures changes with triggers and will not mix with them`);
  const { shadow, old } = shadowNames(t);
  for (const leftover of [shadow, old]) {
    if (await inspectTable(conn, leftover)) throw new InvalidInput('table.table', `${t.database}.${leftover.table} already exists and no checkpoint of "${input.migrationId}" explains it; drop or rename it first`);
  }
  const altered = await tryAlter(conn, input);
  if (altered.primaryKey.length !== 1 || altered.primaryKey[0] !== idName) {
    throw new InvalidInput('alter', `must keep the primary key on ${idName} alone (the altered table's key is ${altered.primaryKey.join(', ') || 'missing'})`);
  }
  const newRange = integerRange(altered.columns.find((c) => c.name === idName)!);
  const { min, max } = await idBounds(conn, t, idName!);
  if (!newRange || (max !== null && (BigInt(max) > newRange.max || BigInt(min!) < newRange.min))) {
    throw new InvalidInput('alter', `leaves ${idName} unable to hold the ids the table has (${min}..${max})`);
  }
  const size = await scalar(conn, 'SELECT DATA_LENGTH + INDEX_LENGTH FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [t.database, t.table]);
  const free = await diskFree(conn);
  if (free !== null && size !== null && BigInt(free) < BigInt(size) * 2n) {
    throw new InvalidInput('table.table', `the server has ${free} bytes free and a second copy of ${t.table} needs about ${size} (twice that with its log); free space first`);
  }
}

/** Free bytes on the data directory's disk, where the server reports it (the DISKS plugin), else null. */
async function diskFree(conn: SqlConnection): Promise<string | null> {
  try {
    return await scalar(conn, 'SELECT MIN(Available) * 1024 FROM information_schema.DISKS');
  } catch {
    return null;
  }
}

/** Validates everything (leaving nothing behind), then creates or finds the checkpoint. */
export async function preflight(event: TaskEvent, deps: TaskDeps): Promise<LoopState> {
  const input = parseOnlineAlterInput(event.migration);
  const conn = await deps.sql.connect(input.table.connection);
  if (!conn.sessions) {
    throw new InvalidInput('table.connection', `"${conn.name}" is an RDS Data API connection; online-alter's triggers, consistent-snapshot verification and swap need a session of their own: configure the cluster as a host connection (mysql2 in the VPC)`);
  }
  const store = new CheckpointStore<OnlineAlterState>(conn, input.table.database, MACHINE);
  let checkpoint = await store.load(input.migrationId, alterIdentityOf(input));
  const me = event.execution ?? 'unnamed execution';
  if (checkpoint) {
    await claimOwnership(input.migrationId, checkpoint.state.owner, me, event.state?.handedOverBy, (id) => deps.executions.isRunning(id));
    if (checkpoint.state.owner !== me) await store.save(input.migrationId, checkpoint.phase, { ...checkpoint.state, owner: me });
  } else {
    await checkTable(conn, input);
    if (input.throttle.query) {
      try {
        await throttleQueryValue(conn, input.throttle.query);
      } catch (err) {
        throw new InvalidInput('throttle.query', `the throttle query fails: ${(err as Error).message}`);
      }
    }
    const estimate = await scalar(conn, 'SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [input.table.database, input.table.table]);
    const now = new Date(deps.now()).toISOString();
    checkpoint = await store.create(input.migrationId, alterIdentityOf(input), 'prepare', {
      startedAt: now, estimatedRows: estimate ?? '0', copiedUpTo: null, rowsCopied: '0', chunkRows: initialChunkRows(input.chunk),
      rowsDeleted: '0', throttledMillis: 0, phaseStartedAt: { prepare: now },
      rangeMin: null, rangeMax: null, verifyUpTo: null, verifiedUpTo: null, rangesVerified: 0, rowsVerified: '0', rangesRepaired: 0,
      swappedAt: null, swapAttempts: 0, autoIncrementAtSwap: null, owner: me,
    });
  }
  const s = checkpoint.state;
  return {
    phase: checkpoint.phase as Phase, done: false, waitSeconds: 0, throttle: null, iterations: 0, continueAsNew: false,
    progress: { rowsCopied: s.rowsCopied, estimatedRows: s.estimatedRows, copiedUpTo: s.copiedUpTo, rowsDeleted: s.rowsDeleted },
  };
}
