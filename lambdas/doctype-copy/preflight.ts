import type { CouchDatabase } from '../core/ports/couch.ts';
import type { TaskDeps } from '../core/ports/task-deps.ts';
import { InvalidInput } from '../core/errors.ts';
import { DocCheckpointStore } from '../core/docs/checkpoint.ts';
import { isDataDocId, wantedDocTypes } from '../core/docs/doc-types.ts';
import { ensureFerryView, ScanIndex } from '../core/docs/doc-type-index.ts';
import { claimOwnership } from '../core/ownership.ts';
import { doctypeBindingOf, doctypeIdentityOf, type DoctypeCopyInput } from '../core/doctype-copy-input.ts';
import { claimMigrationId, refuseIfClaimedElsewhere } from '../core/migration-claims.ts';
import type { MigrationClaims } from '../core/ports/claims.ts';
import { MACHINE, openDatabases, parseDoctypeCopyInput, sourceIndex, type DocLoopState, type DocTaskEvent, type DoctypeCopyState, type Phase } from './open-doc-migration.ts';

const SCAN_PAGE = 2000;

/**
 * Ids whose revisions in the target the source never had: copying history onto them would make
 * conflicts. Reads the target's ids and revs page by page; writes nothing.
 */
async function foreignRevisions(source: CouchDatabase, target: CouchDatabase, limit = 5): Promise<string[]> {
  const found: string[] = [];
  let cursor: string | null = null;
  for (;;) {
    const qs: Record<string, unknown> = { limit: SCAN_PAGE + (cursor === null ? 0 : 1) };
    if (cursor !== null) qs.startkey = cursor;
    const rows = await target.allDocs(qs);
    const revs: Record<string, string[]> = {};
    for (const r of rows) if (isDataDocId(r.id) && r.id !== cursor) revs[r.id] = [r.value.rev];
    const missing = await source.revsDiff(revs);
    for (const [id, m] of Object.entries(missing)) if (m.length) found.push(id);
    if (found.length >= limit || rows.length < (qs.limit as number)) return found.slice(0, limit);
    cursor = rows[rows.length - 1]!.id;
  }
}

/**
 * Every check Preflight makes before it writes anything: the migration id held by no other input,
 * both databases, then the checkpoint of this input or (none yet) the doc-type view and a target
 * free of revisions the source never had.
 * Reads only; `ferry plan` runs exactly these.
 */
export async function checkDoctypeCopy(input: DoctypeCopyInput, deps: Pick<TaskDeps, 'couch'> & { readonly claims: Pick<MigrationClaims, 'ownerOf'> }) {
  await refuseIfClaimedElsewhere(input.migrationId, doctypeBindingOf(input), deps.claims);
  const { source, target } = await openDatabases(input, deps);
  const sourceInfo = await source.info();
  if (!sourceInfo) throw new InvalidInput('source.database', `database ${input.source.database} does not exist at ${source.where} (connection "${source.connection}"); fix the name`);
  const targetInfo = await target.info();
  if (!targetInfo && !input.target.create) {
    throw new InvalidInput('target.database', `database ${input.target.database} does not exist at ${target.where} (connection "${target.connection}"); create it (PUT /${input.target.database}), let ferry create it ("create": true), or fix the name`);
  }
  const store = new DocCheckpointStore<DoctypeCopyState>(target, input.migrationId, MACHINE);
  const checkpoint = targetInfo ? await store.load(input.migrationId, doctypeIdentityOf(input)) : null;
  const wanted = wantedDocTypes(input.docTypes);
  const index = sourceIndex(input, source, wanted);
  if (!checkpoint) {
    if (input.source.docTypeView) {
      try {
        await index.page(null, 1);
      } catch (err) {
        throw new InvalidInput('source.docTypeView', `${input.source.docTypeView} cannot be read in ${input.source.database}: ${(err as Error).message}; name a view keyed [doc_type, _id] that exists, or leave it out`);
      }
    }
    const foreign = targetInfo ? await foreignRevisions(source, target) : [];
    if (foreign.length) {
      throw new InvalidInput('target.database', `${input.target.database} already holds revisions the source does not have (ids ${foreign.join(', ')}); copying history onto them would create conflicts. Empty the target or remove those docs.`);
    }
  }
  return { source, target, sourceInfo, targetInfo, store, checkpoint, index };
}

/** Validates the input and both databases (reads only), claims the migration id, then records the start seq and the checkpoint. */
export async function preflight(event: DocTaskEvent, deps: TaskDeps): Promise<DocLoopState> {
  const input = parseDoctypeCopyInput(event.migration);
  const { source, target, sourceInfo, store, index, ...checked } = await checkDoctypeCopy(input, deps);
  const identity = doctypeIdentityOf(input);
  let checkpoint = checked.checkpoint;
  const me = event.execution ?? 'unnamed execution';
  await claimMigrationId(input.migrationId, doctypeBindingOf(input), me, deps.claims, deps.now);
  if (checkpoint) {
    await claimOwnership(input.migrationId, checkpoint.state.owner, me, event.state?.handedOverBy, deps.executions);
    if (checkpoint.state.owner !== me) checkpoint = await store.update((c) => ({ phase: c.phase, state: { ...c.state, owner: me } }));
  }
  if (checkpoint?.phase === 'reverted') {
    // A run after a revert starts again from what is there: the target keeps its docs, whose
    // revisions the source now holds too, and the copy writes only what it lacks.
    // The top-off replays the source from where the revert began: what the application did there
    // since (deletions too) reaches the target, which still holds the docs as they were.
    const since = checkpoint.state.revert?.sourceSeq ?? checkpoint.state.startSeq;
    const fresh = freshState(since, index instanceof ScanIndex ? sourceInfo.docCount : Object.values(await index.counts()).reduce((a, b) => a + b, 0), me, deps.now());
    checkpoint = await store.update(() => ({ phase: 'initial-copy', state: fresh }));
    deps.report({ migrationId: input.migrationId, phase: 'initial-copy', done: '0', total: null, unit: 'docs', note: `reverted before: starting the copy again from what ${input.target.database} holds`, throttle: null });
  } else if (!checkpoint) {
    // Recorded before the first page is read: the top-off replays every change made during the copy.
    const startSeq = sourceInfo.updateSeq;
    if (await target.create()) deps.report({ migrationId: input.migrationId, phase: 'initial-copy', done: '0', total: null, unit: 'docs', note: `created ${input.target.database}`, throttle: null });
    // Nothing is written to the source unless the operator allowed ferry's view there.
    if (input.allowSourceView) await ensureFerryView(source);
    const estimatedDocs = index instanceof ScanIndex ? sourceInfo.docCount : Object.values(await index.counts()).reduce((a, b) => a + b, 0);
    const state = freshState(startSeq, estimatedDocs, me, deps.now());
    await store.create(identity, 'initial-copy', state);
    checkpoint = { phase: 'initial-copy', state };
  }
  const s = checkpoint.state;
  return {
    phase: checkpoint.phase as Phase, done: false, stopped: false, waitSeconds: 0, throttle: null, iterations: 0, continueAsNew: false,
    progress: { docsCopied: s.docsCopied, estimatedDocs: s.estimatedDocs, docsToppedOff: s.docsToppedOff, docsDeleted: s.docsDeleted },
  };
}

/** The checkpoint's state of a copy that starts now, from the source's seq `startSeq`. */
function freshState(startSeq: string, estimatedDocs: number, owner: string, nowMillis: number): DoctypeCopyState {
  const now = new Date(nowMillis).toISOString();
  return {
    startedAt: now, startSeq, estimatedDocs,
    initialCursor: null, initialDone: false, docsCopied: 0, revisionsWritten: 0,
    topOffSeq: startSeq, quietSince: null, changesRead: 0, docsToppedOff: 0, tombstonesCopied: 0, movedOut: [],
    conflictsCursor: null, conflictsResolved: 0, docsDeleted: 0, leavesDeleted: 0,
    phaseStartedAt: { 'initial-copy': now },
    owner,
  };
}
