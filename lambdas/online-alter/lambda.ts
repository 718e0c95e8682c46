/** Lambda entry points of online-alter: each Task's handler, given the AWS ports. */
import { onLambda } from '../adapters/aws.ts';
import { abandonAlter as abandonAlterTask } from './abandon.ts';
import { cleanup as cleanupTask } from './cleanup.ts';
import { copyChunks as copyChunksTask } from './copy-chunks.ts';
import { createShadow as createShadowTask } from './create-shadow.ts';
import { preflight as preflightTask } from './preflight.ts';
import { summarize as summarizeTask } from './summarize.ts';
import { swapTables as swapTablesTask } from './swap.ts';
import { verify as verifyTask } from './verify.ts';

const machine = 'online-alter';
export const preflight = onLambda(machine, preflightTask);
export const createShadow = onLambda(machine, createShadowTask);
export const copyChunks = onLambda(machine, copyChunksTask);
export const verify = onLambda(machine, verifyTask);
export const swapTables = onLambda(machine, swapTablesTask);
export const abandonAlter = onLambda(machine, abandonAlterTask);
export const cleanup = onLambda(machine, cleanupTask);
export const summarize = onLambda(machine, summarizeTask);
