import { ROW_HASH } from '../core/checksum.ts';
import type { TaskDeps } from '../core/ports/task-deps.ts';
import { InvalidInput } from '../core/errors.ts';
import { identityOf, tableCopyBindingOf } from '../core/table-copy-input.ts';
import { claimMigrationId, refuseIfClaimedElsewhere } from '../core/migration-claims.ts';
import type { MigrationClaims } from '../core/ports/claims.ts';
import { CheckpointStore } from '../core/checkpoints.ts';
import { idBounds, keyBounds } from '../core/tables/copier.ts';
import { copyKeyShape, estimatedRows, hasAnyRow, integerRange } from '../core/tables/inspector.ts';
import { lowWater, type IdClock } from '../core/tables/horizon.ts';
import { DeliveryLedger, KeyLedger } from '../core/tables/ledger.ts';
import { checkCanWaitForWriters, initialSweep } from '../core/tables/sweeper.ts';
import { checkCopyTables, checkThrottleQuery } from '../core/tables/preflight-checks.ts';
import { chunkSettings, initialChunkSpan } from '../core/chunker.ts';
import { copyKeyOf, executionOf, startState, takeOver } from '../core/tables/chunked-copy.ts';
import { connectBoth, MACHINE, parseTableCopyInput, type LoopState, type Phase, type TableCopyState, type TaskEvent } from './open-migration.ts';
import type { TableCopyInput } from '../core/table-copy-input.ts';

/**
 * Every check Preflight makes before it writes anything, in its order: the input, the migration
 * id held by no other input, both tables, the throttle query, the table lock the sweep needs, and
 * either the checkpoint of this input or an empty target. Reads only; `ferry plan` runs exactly these.
 */
export async function checkTableCopy(input: TableCopyInput, deps: Pick<TaskDeps, 'sql'> & { readonly claims: Pick<MigrationClaims, 'ownerOf'> }) {
  await refuseIfClaimedElsewhere(input.migrationId, tableCopyBindingOf(input), deps.claims);
  const { source, target } = await connectBoth(input, deps);
  if (input.throttle.replica) await deps.sql.connect(input.throttle.replica.connection);
  if (input.cleanup.mode === 'truncate' && !source.sessions) {
    throw new InvalidInput('cleanup.mode', `"truncate" locks the source table, which "${source.name}" (RDS Data API) cannot hold between calls; use "trickle-delete"`);
  }
  const { sourceInfo, targetInfo, copyKey } = await checkCopyTables(input, source, target);
  await checkThrottleQuery(input.throttle.connection ? await deps.sql.connect(input.throttle.connection) : source, input.throttle.query);
  await checkCanWaitForWriters(() => deps.sql.connectDedicated(input.source.connection), input.source, 'source.connection');
  const store = new CheckpointStore<TableCopyState>(target, input.target.database, MACHINE);
  const checkpoint = await store.load(input.migrationId, identityOf(input));
  if (!checkpoint && (await hasAnyRow(target, input.target))) {
    throw new InvalidInput(
      'target.table',
      `${input.target.database}.${input.target.table} already holds rows but has no checkpoint for "${input.migrationId}"; ` +
        'empty it, or resume with the migrationId and input that filled it',
    );
  }
  return { source, target, sourceInfo, targetInfo, copyKey, store, checkpoint };
}

/** First task: validate everything, claim the migration id, then create the checkpoint (or find it) and say which phase to run. */
export async function preflight(event: TaskEvent, deps: TaskDeps): Promise<LoopState> {
  const input = parseTableCopyInput(event.migration);
  const checked = await checkTableCopy(input, deps);
  await claimMigrationId(input.migrationId, tableCopyBindingOf(input), executionOf(event), deps.claims, deps.now);
  const { source, target, sourceInfo, store, copyKey } = checked;
  const identity = identityOf(input);
  let checkpoint = checked.checkpoint;
  if (checkpoint) {
    await takeOver(store, checkpoint, event, deps);
    if (checkpoint.phase === 'reverted') {
      // After a revert the application reads both tables again, as it did while the cut-over
      // approval waited: the run asks for that approval again, the re-verification starting afresh.
      const state = { ...checkpoint.state, owner: executionOf(event), reverify: null };
      await store.save(input.migrationId, 'cutover-approval', state);
      checkpoint = { ...checkpoint, phase: 'cutover-approval', state };
      deps.report({ migrationId: input.migrationId, phase: 'cutover-approval', done: state.rowsCopied, total: state.estimatedRows, unit: 'rows', note: 'reverted before: the cut-over is asked for again', throttle: null });
    }
  } else if (copyKey) {
    // copied by another key than one integer id (see key-spans.ts): no id clock, no holes, a ledger of key spans
    const bounds = await keyBounds(source, input.source, copyKeyShape(sourceInfo, copyKey));
    await new KeyLedger(target, input.target.database, input.migrationId).ensureTable();
    const now = new Date(deps.now()).toISOString();
    checkpoint = await store.create(input.migrationId, identity, 'prepare', {
      ...initialState(input, now, executionOf(event)),
      copyKey,
      rangeMin: bounds.min,
      rangeMax: bounds.max,
      estimatedRows: await estimatedRows(source, input.source),
      idFloor: '0',
    });
  } else {
    const idName = copyKeyOf(null, sourceInfo).column;
    const bounds = await idBounds(source, input.source, idName);
    // the id clock's first sample (see horizon.ts): the copy starts once it reaches back far enough
    const idClock: IdClock = [];
    await lowWater(source, input.source, idName, idClock);
    const idFloor = integerRange(sourceInfo.columns.find((c) => c.name === idName)!)!.min.toString();
    await new DeliveryLedger(target, input.target.database, input.migrationId).ensureTable();
    const now = new Date(deps.now()).toISOString();
    checkpoint = await store.create(input.migrationId, identity, 'prepare', {
      ...initialState(input, now, executionOf(event)),
      rangeMin: bounds.min,
      rangeMax: bounds.max,
      estimatedRows: await estimatedRows(source, input.source),
      idFloor,
      idClock,
    });
  }
  return startState(checkpoint.phase as Phase, checkpoint.state);
}

/** What every new checkpoint starts with, whichever key the table is copied by. */
function initialState(input: TableCopyInput, now: string, owner: string) {
  return {
    startedAt: now,
    copiedUpTo: null,
    rowsCopied: '0',
    chunkSpan: initialChunkSpan(chunkSettings(input.chunk)),
    autoIncrement: null,
    idOffset: input.idOffset ?? null,
    insertsPerHour: null,
    sweep: initialSweep(),
    quietSince: null,
    verifiedUpTo: null,
    rangesVerified: 0,
    rowsVerified: '0',
    rangesRepaired: 0,
    cleanedUpTo: null,
    rowsDeleted: '0',
    throttledMillis: 0,
    phaseStartedAt: { prepare: now },
    owner,
    rowHash: ROW_HASH,
  };
}
