import { compareCounts, formatCounts, type DocTypeCounts } from './doc-types.ts';
import { seqNumber } from './changes.ts';

export interface CompletenessFacts {
  readonly checkpointFound: boolean;
  readonly initialCopyDone: boolean;
  readonly wanted: readonly string[];
  readonly sourceCounts: DocTypeCounts;
  readonly targetCounts: DocTypeCounts;
  readonly checkpointSeq: string | null;
  readonly sourceSeq: string;
  /** How many changes the checkpoint may trail the source by. */
  readonly maxSeqLag: number;
  /** Docs of the wanted types whose winning revision in the target is not the source's (first few), and how many in all. */
  readonly differing?: readonly string[];
  readonly differingCount?: number;
  /** Live docs in the target that no live doc of the wanted types in the source accounts for. */
  readonly extraInTarget?: number;
}

export type CompletenessVerdict = { readonly complete: true } | { readonly complete: false; readonly problems: readonly string[] };

/** The blocking check before the cut-over: every condition is checked and every failure named. */
export function checkComplete(f: CompletenessFacts): CompletenessVerdict {
  const problems: string[] = [];
  if (!f.checkpointFound) problems.push('no checkpoint in the target: the initial copy never ran');
  else if (!f.initialCopyDone) problems.push('the initial copy has not finished');
  const rows = compareCounts(f.wanted, f.sourceCounts, f.targetCounts);
  if (rows.some((r) => r.source !== r.target)) problems.push(`per-type counts differ:\n${formatCounts(rows)}`);
  if (f.differingCount) problems.push(`${f.differingCount} docs have another winning revision in the target, first ${(f.differing ?? []).join(', ')}`);
  if (f.extraInTarget) problems.push(`the target holds ${f.extraInTarget} live docs the source no longer has (deleted there, or no longer of a wanted type)`);
  const at = seqNumber(f.checkpointSeq);
  const head = seqNumber(f.sourceSeq);
  if (f.checkpointSeq === null) problems.push('the top-off has no checkpoint seq');
  else if (at !== null && head !== null && head - at > f.maxSeqLag) {
    problems.push(`the top-off checkpoint is ${head - at} changes behind the source (allowed: ${f.maxSeqLag})`);
  }
  return problems.length === 0 ? { complete: true } : { complete: false, problems };
}
