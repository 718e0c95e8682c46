/** Lambda entry points of online-alter: each Task's handler, given the AWS ports. */
import { planOnAws } from '../adapters/plan-aws.ts';
import { onlineAlterInputSchema } from '../core/online-alter-input.ts';
import { planOnlineAlter } from './plan.ts';
import { awsDeps, onLambda } from '../adapters/aws.ts';
import { abandonAlter as abandonAlterTask } from './abandon.ts';
import { cleanup as cleanupTask } from './cleanup.ts';
import { originalBehind, revert as revertTask } from './revert.ts';
import { copyChunks as copyChunksTask } from './copy-chunks.ts';
import { createShadow as createShadowTask } from './create-shadow.ts';
import { preflight as preflightTask } from './preflight.ts';
import { summarize as summarizeTask } from './summarize.ts';
import { swapTables as swapTablesTask } from './swap.ts';
import { verify as verifyTask } from './verify.ts';
import { reverify as reverifyTask } from './reverify.ts';
import { scheduledReverify } from '../adapters/reverify-aws.ts';

const machine = 'online-alter';
export const preflight = onLambda(machine, preflightTask);
export const createShadow = onLambda(machine, createShadowTask);
export const copyChunks = onLambda(machine, copyChunksTask);
export const verify = onLambda(machine, verifyTask);
export const swapTables = onLambda(machine, swapTablesTask);
export const abandonAlter = onLambda(machine, abandonAlterTask);
export const cleanup = onLambda(machine, cleanupTask);
export const revert = onLambda(machine, revertTask);
export const summarize = onLambda(machine, summarizeTask);

/** Not a Task: `ferry plan online-alter --aws` invokes it, where the databases answer (see plan.ts). */
export const plan = (event: { migration: unknown }, context?: { getRemainingTimeInMillis(): number }) => planOnAws(onlineAlterInputSchema, planOnlineAlter, event, awsDeps(machine, context));

/** Not a Task: run on a schedule, the re-verification beside every pending cut-over approval (reverify.ts), and the revert window's lag beside every pending cleanup approval (revert.ts). */
export const reverify = scheduledReverify(machine, reverifyTask, originalBehind);
