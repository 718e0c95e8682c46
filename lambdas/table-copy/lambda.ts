/** Lambda entry points of table-copy: each Task's handler, given the AWS ports. */
import { planOnAws } from '../adapters/plan-aws.ts';
import { tableCopyInputSchema } from '../core/table-copy-input.ts';
import { planTableCopy } from './plan.ts';
import { awsDeps, onLambda } from '../adapters/aws.ts';
import { scheduledReverify } from '../adapters/reverify-aws.ts';
import { reverify as reverifyTask } from './reverify.ts';
import { catchUp as catchUpTask } from './catch-up.ts';
import { cleanup as cleanupTask } from './cleanup.ts';
import { abandonCopy as abandonCopyTask } from './abandon.ts';
import { oldTableBehind, revert as revertTask } from './revert.ts';
import { copyChunks as copyChunksTask } from './copy-chunks.ts';
import { copyPartition as copyPartitionTask, finishPartitions as finishPartitionsTask, planPartitions as planPartitionsTask } from './partitions.ts';
import { setCopyFlags as setCopyFlagsTask, setCutoverFlags as setCutoverFlagsTask } from './flags.ts';
import { preflight as preflightTask } from './preflight.ts';
import { raiseAutoIncrement as raiseAutoIncrementTask } from './raise-auto-increment.ts';
import { summarize as summarizeTask } from './summarize.ts';
import { sweep as sweepTask } from './sweep.ts';
import { verify as verifyTask } from './verify.ts';

const machine = 'table-copy';
export const preflight = onLambda(machine, preflightTask);
export const raiseAutoIncrement = onLambda(machine, raiseAutoIncrementTask);
export const setCopyFlags = onLambda(machine, setCopyFlagsTask);
export const copyChunks = onLambda(machine, copyChunksTask);
export const planPartitions = onLambda(machine, planPartitionsTask);
export const copyPartition = onLambda(machine, copyPartitionTask);
export const finishPartitions = onLambda(machine, finishPartitionsTask);
export const catchUp = onLambda(machine, catchUpTask);
export const verify = onLambda(machine, verifyTask);
export const setCutoverFlags = onLambda(machine, setCutoverFlagsTask);
export const sweep = onLambda(machine, sweepTask);
export const cleanup = onLambda(machine, cleanupTask);
export const revert = onLambda(machine, revertTask);
export const summarize = onLambda(machine, summarizeTask);
export const abandonCopy = onLambda(machine, abandonCopyTask);

/** Not a Task: run on a schedule, the re-verification beside every pending cut-over approval (reverify.ts), and the old table's lag beside every pending cleanup approval (revert.ts). */
export const reverify = scheduledReverify(machine, reverifyTask, oldTableBehind);

/** Not a Task: `ferry plan table-copy --aws` invokes it, where the databases answer (see plan.ts). */
export const plan = (event: { migration: unknown }, context?: { getRemainingTimeInMillis(): number }) => planOnAws(tableCopyInputSchema, planTableCopy, event, awsDeps(machine, context));
