import type { CouchDatabase } from '../core/ports/couch.ts';
import type { Progress, TaskDeps } from '../core/ports/task-deps.ts';
import { knobsNotRead, readKnobs, withKnobs, type Knobbed } from '../core/knobs.ts';
import { PAUSED_FLAG } from '../core/ports/flags.ts';
import { InvalidInput } from '../core/errors.ts';
import { wantedDocTypes } from '../core/docs/doc-types.ts';
import { DocCheckpointStore } from '../core/docs/checkpoint.ts';
import { doctypeCopyInputSchema, doctypeIdentityOf, type DoctypeCopyInput } from '../core/doctype-copy-input.ts';
import { parseInput } from '../core/input-parts.ts';
import { docTypeIndex, type DocTypeIndex } from '../core/docs/doc-type-index.ts';
import { refuseIfReplaced } from '../core/ownership.ts';

export const MACHINE = 'doctype-copy';

export const PHASES = ['initial-copy', 'top-off', 'assert', 'cutover-approval', 'cleanup-approval', 'cleanup', 'done', 'revert', 'reverted'] as const;
export type Phase = (typeof PHASES)[number];

/** Phases in which the top-off must never run: the source is being emptied, or is the home again. */
export const TOP_OFF_STOPPED: readonly Phase[] = ['cleanup', 'done', 'revert', 'reverted'];

/** Where a revert (`ferry revert`, see revert.ts) stands. */
export interface RevertState {
  /** Where the carrying back stands in the target's changes feed. */
  seq: string;
  /** The flags are back as they were before the cut-over. */
  flagsBack: boolean;
  /** The verifying pass's place in the feed, once it began (null: not begun). */
  verifySeq: string | null;
  quietSince: string | null;
  docsCarried: number;
  tombstonesCarried: number;
  askedBy: string | null;
  /** The source's seq when the revert began: a run after the revert replays the source's changes from here. */
  sourceSeq: string;
}

export interface DoctypeCopyState {
  readonly startedAt: string;
  /** The source's seq recorded before the first page: the top-off replays everything after it. */
  readonly startSeq: string;
  estimatedDocs: number;
  initialCursor: string | null;
  initialDone: boolean;
  docsCopied: number;
  revisionsWritten: number;
  topOffSeq: string;
  quietSince: string | null;
  changesRead: number;
  docsToppedOff: number;
  tombstonesCopied: number;
  /** Docs in the target whose doc_type changed to one not migrated (first 100). */
  movedOut: { id: string; docType: string }[];
  /**
   * Docs the application changed in the target after the cut-over while a late server changed them
   * in the source too (first 100): the target's stays as the application left it, the source's is
   * not carried over, and the cleanup leaves the source doc in place for a person to decide.
   */
  editedInBoth?: { id: string; targetRev: string; sourceRev: string }[];
  editedInBothCount?: number;
  /** The cut-over flags' values just before the cut-over set them (null: not set), for a revert. */
  flagsBefore?: Record<string, string | null>;
  /** The target's seq just before the cut-over: what the application writes there comes after it. */
  targetSeqAtCutover?: string;
  /** When the old database's lag was last reported for the approval page on AWS (see reportLag). */
  lagReportedAt?: string;
  /** The revert asked for instead of the cleanup, once it began. */
  revert?: RevertState;
  /** Live docs per type on both sides when the completeness check passed, before the cut-over. */
  checkedCounts?: { source: Record<string, number>; target: Record<string, number> };
  /** The cleanup's one top-off pass, before its first deletion, is done: none may run after. */
  lastTopOffDone?: boolean;
  /** Where the cleanup's deletions stand in the source's index. */
  cleanupCursor?: string | null;
  /** Docs the cleanup left in the source (edited in both places). */
  docsLeftInSource?: number;
  /** Conflict leaves in the target that the source never had (the application's): kept, not deleted. */
  conflictsKept?: number;
  conflictsCursor: string | null;
  conflictsResolved: number;
  docsDeleted: number;
  leavesDeleted: number;
  phaseStartedAt: Record<string, string>;
  /** The execution running this migration (see ownership.ts). */
  owner?: string | null;
}

export interface DocLoopState {
  readonly phase: Phase;
  readonly done: boolean;
  /** The top-off has stopped for good (cleanup began). */
  readonly stopped: boolean;
  readonly waitSeconds: number;
  readonly throttle: string | null;
  readonly iterations: number;
  readonly continueAsNew: boolean;
  readonly progress: { readonly docsCopied: number; readonly estimatedDocs: number; readonly docsToppedOff: number; readonly docsDeleted: number };
}

export interface DocTaskEvent {
  readonly migration: unknown;
  readonly state?: { readonly iterations?: number; readonly handedOverBy?: string } | null;
  /** `$$.Execution.Id`, given to Preflight. */
  readonly execution?: string;
}

export interface DocMigration extends Knobbed<DoctypeCopyInput> {
  readonly deps: TaskDeps;
  readonly source: CouchDatabase;
  readonly target: CouchDatabase;
  readonly wanted: readonly string[];
  readonly wantedSet: ReadonlySet<string>;
  /** Where the source's docs of the wanted types are found. */
  readonly index: DocTypeIndex;
  readonly store: DocCheckpointStore<DoctypeCopyState>;
  phase: Phase;
  state: DoctypeCopyState;
  readonly iterations: number;
  readonly startedMillis: number;
}

export function parseDoctypeCopyInput(raw: unknown): DoctypeCopyInput {
  return parseInput(doctypeCopyInputSchema, raw);
}

export async function openDatabases(input: DoctypeCopyInput, deps: Pick<TaskDeps, 'couch'>): Promise<{ source: CouchDatabase; target: CouchDatabase }> {
  const source = await deps.couch.database(input.source.connection, input.source.database);
  const target = await deps.couch.database(input.target.connection, input.target.database);
  return { source, target };
}

export async function openDocMigration(event: DocTaskEvent, deps: TaskDeps): Promise<DocMigration> {
  const startedMillis = deps.now();
  const input = parseDoctypeCopyInput(event.migration);
  const { source, target } = await openDatabases(input, deps);
  const store = new DocCheckpointStore<DoctypeCopyState>(target, input.migrationId, MACHINE);
  const checkpoint = await store.load(input.migrationId, doctypeIdentityOf(input));
  if (!checkpoint) {
    throw new InvalidInput('migrationId', `no checkpoint for "${input.migrationId}" in ${input.target.database}; start the execution from the beginning so Preflight can check the databases`);
  }
  refuseIfReplaced(input.migrationId, checkpoint.state.owner, event.execution);
  const wanted = wantedDocTypes(input.docTypes);
  return {
    input, deps, source, target, wanted, wantedSet: new Set(wanted), store,
    knobs: knobsNotRead(),
    retune: (knobs) => withKnobs(doctypeCopyInputSchema, input, knobs),
    index: sourceIndex(input, source, wanted),
    phase: checkpoint.phase as Phase,
    state: checkpoint.state,
    iterations: (event.state?.iterations ?? 0) + 1,
    startedMillis,
  };
}

/**
 * Writes the checkpoint: `change` is applied to the freshest stored state (another task of the
 * same execution may have written since this one read it), and the result becomes this task's view.
 */
export async function saveDoc(m: DocMigration, change: (s: DoctypeCopyState, phase: Phase) => Phase | void): Promise<void> {
  const next = await m.store.update((current) => {
    const phase = current.phase as Phase;
    const newPhase = change(current.state, phase) ?? phase;
    if (newPhase !== phase) current.state.phaseStartedAt[newPhase] = new Date(m.deps.now()).toISOString();
    return { phase: newPhase, state: current.state };
  });
  m.phase = next.phase as Phase;
  m.state = next.state;
}

/** The source's index of the wanted docs: the view the input names, ferry's own when allowed, or a scan. */
export function sourceIndex(input: DoctypeCopyInput, source: CouchDatabase, wanted: readonly string[]): DocTypeIndex {
  return docTypeIndex(source, wanted, { view: input.source.docTypeView, ferryView: input.allowSourceView });
}

/** Notes docs edited in both databases after the cut-over (the first 100 kept by id). */
export function noteEditedInBoth(s: DoctypeCopyState, docs: readonly { id: string; targetRev: string; sourceRev: string }[]): void {
  const list = (s.editedInBoth ??= []);
  for (const d of docs) {
    if (list.some((x) => x.id === d.id)) continue;
    s.editedInBothCount = (s.editedInBothCount ?? 0) + 1;
    if (list.length < 100) list.push(d);
  }
}

export function timeLeft(m: DocMigration): boolean {
  return !m.deps.stopping?.aborted && m.deps.now() - m.startedMillis < m.deps.budgetMillis;
}

/** Takes in the live knobs (see knobs.ts): before each page. */
export async function followDocKnobs(m: DocMigration): Promise<void> {
  const change = await readKnobs(m, m.deps.knobs, m.deps.now());
  for (const warning of change?.ignored ?? []) m.deps.report({ ...progressOf(m, warning), warning });
  if (change?.inForce) reportDoc(m, change.inForce);
}

/** Whether to hold before the next page (the FERRY_PAUSED flag), after taking in the live knobs. */
export async function pausedReason(m: DocMigration): Promise<string | null> {
  await followDocKnobs(m);
  return (await m.deps.flags.get(m.input.migrationId, PAUSED_FLAG)) === 'true' ? 'paused by the FERRY_PAUSED flag' : null;
}

function progressOf(m: DocMigration, note: string): Progress {
  const s = m.state;
  const done = m.phase === 'cleanup' || m.phase === 'done' ? s.docsDeleted : m.phase === 'initial-copy' ? s.docsCopied : s.docsToppedOff;
  return {
    migrationId: m.input.migrationId,
    phase: m.phase,
    done: String(done),
    total: m.phase === 'initial-copy' || m.phase === 'cleanup' ? String(s.estimatedDocs) : null,
    unit: 'docs',
    note,
    throttle: null,
    ...(Object.keys(m.knobs.inForce).length ? { knobs: m.knobs.inForce } : {}),
  };
}

export function reportDoc(m: DocMigration, note: string, throttle: string | null = null, waitSeconds?: number): void {
  m.deps.report({ ...progressOf(m, note), throttle, waitSeconds });
}

export function docLoopState(m: DocMigration, fields: { done: boolean; stopped?: boolean; waitSeconds?: number; throttle?: string | null }): DocLoopState {
  const s = m.state;
  return {
    phase: m.phase,
    done: fields.done,
    stopped: fields.stopped ?? false,
    waitSeconds: fields.waitSeconds ?? 0,
    throttle: fields.throttle ?? null,
    iterations: m.iterations,
    continueAsNew: !fields.done && !fields.stopped && m.iterations >= m.input.execution.maxLoopIterations,
    progress: { docsCopied: s.docsCopied, estimatedDocs: s.estimatedDocs, docsToppedOff: s.docsToppedOff, docsDeleted: s.docsDeleted },
  };
}
