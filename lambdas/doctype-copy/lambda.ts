/** Lambda entry points of doctype-copy: each Task's handler, given the AWS ports. */
import { planOnAws } from '../adapters/plan-aws.ts';
import { doctypeCopyInputSchema } from '../core/doctype-copy-input.ts';
import { planDoctypeCopy } from './plan.ts';
import { awsDeps, onLambda } from '../adapters/aws.ts';
import { assertComplete as assertCompleteTask } from './assert-complete.ts';
import { cleanup as cleanupTask } from './cleanup.ts';
import { copyDocs as copyDocsTask } from './copy-docs.ts';
import { setCutoverFlags as setCutoverFlagsTask, stopTopOff as stopTopOffTask } from './cutover.ts';
import { preflight as preflightTask } from './preflight.ts';
import { revert as revertTask } from './revert.ts';
import { summarize as summarizeTask } from './summarize.ts';
import { topOff as topOffTask } from './top-off.ts';

const machine = 'doctype-copy';
export const preflight = onLambda(machine, preflightTask);
export const copyDocs = onLambda(machine, copyDocsTask);
export const topOff = onLambda(machine, topOffTask);
export const assertComplete = onLambda(machine, assertCompleteTask);
export const setCutoverFlags = onLambda(machine, setCutoverFlagsTask);
export const stopTopOff = onLambda(machine, stopTopOffTask);
export const cleanup = onLambda(machine, cleanupTask);
export const revert = onLambda(machine, revertTask);
export const summarize = onLambda(machine, summarizeTask);

/** Not a Task: `ferry plan doctype-copy --aws` invokes it, where the databases answer (see plan.ts). */
export const plan = (event: { migration: unknown }, context?: { getRemainingTimeInMillis(): number }) => planOnAws(doctypeCopyInputSchema, planDoctypeCopy, event, awsDeps(machine, context));
