import { readPage } from '../core/docs/copier.ts';
import { hasFerryView, ScanIndex, type DocTypeIndex } from '../core/docs/doc-type-index.ts';
import { wantedDocTypes } from '../core/docs/doc-types.ts';
import type { DoctypeCopyInput } from '../core/doctype-copy-input.ts';
import { count, projectAws, secondsAt, type Plan, type PlanDeps, type PlanKnobs, type PlanSample } from '../core/plan.ts';
import { PAUSED_FLAG } from '../core/ports/flags.ts';
import { MACHINE, type DoctypeCopyState } from './open-doc-migration.ts';
import { checkDoctypeCopy } from './preflight.ts';

/** The fixed path of a doctype-copy on AWS (each task once, the Choices and the Parallel between), measured with `ferry local`'s usage line. */
const FIXED = { transitions: 23, invocations: 8 };

/** Without a view, docs per type are counted by reading every doc: done only for databases up to this size. */
const SCAN_COUNT_UP_TO = 100_000;

/**
 * `ferry plan doctype-copy`: Preflight's checks (InvalidInput when it would refuse), then the docs
 * that would move per type, how long and what it costs, the flags and approvals, and what to watch
 * out for. Reads only: ferry's own view is not created, the target not made.
 */
export async function planDoctypeCopy(input: DoctypeCopyInput, deps: PlanDeps, knobs: PlanKnobs): Promise<Plan> {
  const { source, target, sourceInfo, targetInfo, checkpoint, index } = await checkDoctypeCopy(input, deps);
  const warnings: string[] = [];
  const wanted = wantedDocTypes(input.docTypes);
  // ferry's own view, allowed but not built yet, would be built by Preflight; a plan reads by scanning instead.
  const viewMissing = !input.source.docTypeView && input.allowSourceView && !(await hasFerryView(source));
  const readable: DocTypeIndex = viewMissing ? new ScanIndex(source, wanted) : index;
  const scanning = readable instanceof ScanIndex;
  let perType: Record<string, number> | null = null;
  if (!scanning || sourceInfo.docCount <= SCAN_COUNT_UP_TO) perType = { ...(await readable.counts()) };
  const docs = perType ? Object.values(perType).reduce((a, b) => a + b, 0) : sourceInfo.docCount;
  const moves = [
    `${input.source.database} on "${source.connection}" → ${input.target.database} on "${target.connection}"${targetInfo ? ` (exists: ${count(targetInfo.docCount)} docs)` : ' (created by Preflight)'}, revisions and conflicts kept`,
    `doc types: ${wanted.join(', ')}`,
    perType
      ? `docs: ${count(docs)} (${Object.entries(perType).map(([t, n]) => `${t} ${count(n)}`).join(', ')}), counted through ${readable.label}`
      : `docs: up to ${count(docs)} (every doc in ${input.source.database}; without a view the docs per type are known only by reading them all)`,
    `read through ${viewMissing ? `ferry's view _design/ferry (built in ${input.source.database} by Preflight, allowSourceView)` : index.label}, ${input.page.docs} docs a page`,
    `source seq recorded at the start (now ${sourceInfo.updateSeq}); the top-off replays every change after it until quiet for ${input.topOff.quietSeconds} s, and again during the approvals`,
  ];
  let resumes: Plan['resumes'] = null;
  let left = docs;
  if (checkpoint) {
    const s: DoctypeCopyState = checkpoint.state;
    left = checkpoint.phase === 'initial-copy' ? Math.max(0, docs - s.docsCopied) : 0;
    resumes = { phase: checkpoint.phase, note: `${s.docsCopied} docs copied, ${s.docsToppedOff} topped off, ${s.docsDeleted} deleted; top-off at seq ${s.topOffSeq}; owned by ${s.owner ?? 'no execution'}` };
  }
  const started = deps.now();
  const page = left > 0 ? await readPage(source, readable, null, input.page.docs) : null;
  const sample: PlanSample | null = page && page.docs.length ? { unit: 'docs', count: page.copied, millis: deps.now() - started } : null;
  const copySeconds = secondsAt(sample, BigInt(left));
  if ((await deps.flags.get(input.migrationId, PAUSED_FLAG)) === 'true') warnings.push('paused: the FERRY_PAUSED flag is set; the copy holds at its first page until `ferry resume`');
  if (scanning && !viewMissing) warnings.push(`no docTypeView: every pass reads every doc of ${input.source.database} (${count(sourceInfo.docCount)}) through _all_docs; name a view keyed [doc_type, _id], or set allowSourceView`);
  if (viewMissing) warnings.push(`allowSourceView: Preflight writes _design/ferry into ${input.source.database}, and CouchDB builds its index over every doc before the first page`);
  if (input.cleanup.mode === 'delete') warnings.push(`cleanup "delete" deletes every moved doc (each leaf) from ${input.source.database} after the cleanup approval`);
  const polls = Math.ceil(input.topOff.quietSeconds / input.topOff.pollSeconds);
  const aws = projectAws({ fixedTransitions: FIXED.transitions, fixedInvocations: FIXED.invocations, loopSeconds: copySeconds ?? 0, parallel: 1, polls });
  return {
    machine: MACHINE,
    migrationId: input.migrationId,
    wouldRun: true,
    resumes,
    moves,
    counts: { docs, exact: perType !== null, perType, docsLeft: left, sourceDocs: sourceInfo.docCount, sourceSeq: sourceInfo.updateSeq },
    disk: { needBytes: null, freeBytes: null, note: 'CouchDB tells neither: the target takes about what the moved docs and their history take in the source' },
    estimate: {
      sample,
      seconds: copySeconds === null ? null : copySeconds + input.topOff.quietSeconds,
      note: sample
        ? `reading a page of ${sample.count} docs with their revisions took ${sample.millis} ms; ${count(left)} docs at that pace, plus ${input.topOff.quietSeconds} s of quiet for the top-off. Writing the target comes on top, as do the approvals`
        : left === 0 ? 'nothing left to copy' : 'no doc of these types to time',
    },
    aws: { ...aws, note: `copy invocations of at most 300 s, ${polls} top-off polls; the top-off keeps polling during the approvals (3 transitions each); 1 GB Lambdas at us-east-1 2024 list prices` },
    flags: [{ step: 'SetCutoverFlags (after the cutover approval; the top-off goes on)', values: input.flags.cutover }],
    approvals: [
      'cutover: after the initial copy is complete and topped off, before the cut-over flags',
      `cleanup: before ${input.cleanup.mode === 'none' ? 'the end (cleanup "none" keeps the source docs)' : `the moved docs are deleted from ${input.source.database}, ${input.cleanup.batchDocs} a batch`}`,
    ],
    knobs,
    warnings,
  };
}
