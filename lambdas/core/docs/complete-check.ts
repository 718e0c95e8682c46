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
  /** Live docs in the target whose winning revision the source does not hold live (first few), and how many in all. */
  readonly differing?: readonly string[];
  readonly differingCount?: number;
  /** Live docs in the target, matching the source, of no wanted type. */
  readonly extraInTarget?: number;
  /** How far each type's counts may differ: its docs changed in the source since the top-off's seq, which the next top-off carries (none). */
  readonly countSlack?: Readonly<Record<string, number>>;
}

export type CompletenessVerdict = { readonly complete: true } | { readonly complete: false; readonly problems: readonly string[] };

/** The blocking check before the cut-over: every condition is checked and every failure named. */
export function checkComplete(f: CompletenessFacts): CompletenessVerdict {
  const problems: string[] = [];
  if (!f.checkpointFound) problems.push('no checkpoint in the target: the initial copy never ran');
  else if (!f.initialCopyDone) problems.push('the initial copy has not finished');
  const rows = compareCounts(f.wanted, f.sourceCounts, f.targetCounts);
  const slack = (type: string) => f.countSlack?.[type] ?? 0;
  const off = rows.filter((r) => Math.abs(r.source - r.target) > slack(r.docType));
  if (off.length) {
    const changed = off.filter((r) => slack(r.docType) > 0).map((r) => `${r.docType}: ${slack(r.docType)}`);
    problems.push(`per-type counts differ${changed.length ? ` by more than the docs changed since the top-off's seq (${changed.join(', ')})` : ''}:\n${formatCounts(rows)}`);
  }
  if (f.differingCount) problems.push(`${f.differingCount} live docs in the target are not live in the source with the same winning revision (deleted there, or changed and not carried over), first ${(f.differing ?? []).join(', ')}`);
  if (f.extraInTarget) problems.push(`the target holds ${f.extraInTarget} live docs of no wanted type`);
  const at = seqNumber(f.checkpointSeq);
  const head = seqNumber(f.sourceSeq);
  if (f.checkpointSeq === null) problems.push('the top-off has no checkpoint seq');
  else if (at !== null && head !== null && head - at > f.maxSeqLag) {
    problems.push(`the top-off checkpoint is ${head - at} changes behind the source (allowed: ${f.maxSeqLag})`);
  }
  return problems.length === 0 ? { complete: true } : { complete: false, problems };
}
