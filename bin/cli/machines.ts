import { aslPath, aslText, functionPlaceholders } from '../../statemachines/asl.ts';
import type { TaskDeps } from '../../lambdas/core/ports/task-deps.ts';
import { catchUp } from '../../lambdas/table-copy/catch-up.ts';
import { cleanup } from '../../lambdas/table-copy/cleanup.ts';
import { revert } from '../../lambdas/table-copy/revert.ts';
import { copyChunks } from '../../lambdas/table-copy/copy-chunks.ts';
import { copyPartition, finishPartitions, planPartitions } from '../../lambdas/table-copy/partitions.ts';
import { setCopyFlags, setCutoverFlags } from '../../lambdas/table-copy/flags.ts';
import { parseTableCopyInput, type TaskEvent } from '../../lambdas/table-copy/open-migration.ts';
import { preflight } from '../../lambdas/table-copy/preflight.ts';
import { raiseAutoIncrement } from '../../lambdas/table-copy/raise-auto-increment.ts';
import { summarize } from '../../lambdas/table-copy/summarize.ts';
import { sweep } from '../../lambdas/table-copy/sweep.ts';
import { verify } from '../../lambdas/table-copy/verify.ts';
import { reverify } from '../../lambdas/table-copy/reverify.ts';
import { abandonCopy, windowLeft } from '../../lambdas/table-copy/abandon.ts';
import { assertComplete } from '../../lambdas/doctype-copy/assert-complete.ts';
import { cleanup as docCleanup } from '../../lambdas/doctype-copy/cleanup.ts';
import { copyDocs } from '../../lambdas/doctype-copy/copy-docs.ts';
import { setCutoverFlags as docSetCutoverFlags, stopTopOff } from '../../lambdas/doctype-copy/cutover.ts';
import { parseDoctypeCopyInput } from '../../lambdas/doctype-copy/open-doc-migration.ts';
import { preflight as docPreflight } from '../../lambdas/doctype-copy/preflight.ts';
import { revert as docRevert } from '../../lambdas/doctype-copy/revert.ts';
import { summarize as docSummarize } from '../../lambdas/doctype-copy/summarize.ts';
import { topOff } from '../../lambdas/doctype-copy/top-off.ts';
import { abandonAlter, triggersLeft } from '../../lambdas/online-alter/abandon.ts';
import { cleanup as alterCleanup } from '../../lambdas/online-alter/cleanup.ts';
import { revert as alterRevert } from '../../lambdas/online-alter/revert.ts';
import { copyChunks as alterCopyChunks } from '../../lambdas/online-alter/copy-chunks.ts';
import { createShadow } from '../../lambdas/online-alter/create-shadow.ts';
import { parseOnlineAlterInput } from '../../lambdas/online-alter/open-alter.ts';
import { preflight as alterPreflight } from '../../lambdas/online-alter/preflight.ts';
import { summarize as alterSummarize } from '../../lambdas/online-alter/summarize.ts';
import { swapTables } from '../../lambdas/online-alter/swap.ts';
import { verify as alterVerify } from '../../lambdas/online-alter/verify.ts';
import { reverify as alterReverify } from '../../lambdas/online-alter/reverify.ts';

export type Handler = (event: TaskEvent, deps: TaskDeps) => Promise<unknown>;

export interface MachineSpec {
  readonly name: string;
  /** Parses and validates an execution input; throws InvalidInput. */
  readonly parse: (raw: unknown) => { migrationId: string };
  /** Task state name → handler. Approval and continuation states are supplied by the runner. */
  readonly handlers: Readonly<Record<string, Handler>>;
  /** Needs a CouchDB: the runner starts an embedded one when none is configured or answering. */
  readonly couch?: boolean;
  /**
   * Work that runs beside a pending approval, by step (on AWS a scheduled function does it): called
   * again and again while the approval waits, with the waiting execution's id as `execution`.
   */
  readonly besideApproval?: Readonly<Record<string, Handler>>;
  /** What a stopped run leaves on the live tables until it is resumed or abandoned, in words (null: nothing). */
  readonly leftOnStop?: (input: unknown, deps: TaskDeps) => Promise<string | null>;
  /** The connections the input names, each with its field: the runner reaches each before anything runs. */
  readonly connections: (input: unknown) => readonly Connection[];
}

export interface Connection {
  readonly field: string;
  readonly kind: 'mysql' | 'couch';
  readonly name: string;
}

/** The `connection` of each of these input fields that has one. */
function connectionsAt(input: unknown, kind: Connection['kind'], fields: readonly string[]): Connection[] {
  return fields.flatMap((field) => {
    const at = field.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), input);
    return typeof at === 'string' ? [{ field, kind, name: at }] : [];
  });
}

/**
 * The ASL with its `${NameFunctionArn}` placeholders filled, as CDK's definitionSubstitutions do on
 * deploy. Locally each becomes a well-formed ARN; the runner routes the Task by state name anyway.
 */
export function loadDefinition(machine: string): unknown {
  let text = aslText(machine);
  for (const name of functionPlaceholders(text)) {
    text = text.replaceAll(`\${${name}FunctionArn}`, `arn:aws:lambda:us-east-1:000000000000:function:ferry-local-${name}`);
  }
  const left = text.match(/\$\{[^}]*\}/);
  if (left) throw new Error(`${aslPath(machine)}: placeholder ${left[0]} has no local value`);
  return JSON.parse(text);
}

export const MACHINES: Readonly<Record<string, MachineSpec>> = {
  'table-copy': {
    name: 'table-copy',
    parse: parseTableCopyInput,
    connections: (input) => connectionsAt(input, 'mysql', ['source.connection', 'target.connection', 'throttle.replica.connection']),
    handlers: {
      Preflight: preflight,
      RaiseAutoIncrement: raiseAutoIncrement,
      SetCopyFlags: setCopyFlags,
      CopyChunks: copyChunks,
      PlanPartitions: planPartitions,
      CopyPartition: copyPartition as Handler,
      FinishPartitions: finishPartitions,
      CatchUp: catchUp,
      Verify: verify,
      SetCutoverFlags: setCutoverFlags,
      Sweep: sweep,
      Cleanup: cleanup,
      RevertAsked: revert,
      Revert: revert,
      Summarize: summarize,
      AbandonRequested: abandonCopy,
    },
    besideApproval: {
      cutover: reverify as Handler,
    },
    leftOnStop: windowLeft,
  },
  'doctype-copy': {
    name: 'doctype-copy',
    parse: parseDoctypeCopyInput,
    connections: (input) => connectionsAt(input, 'couch', ['source.connection', 'target.connection']),
    couch: true,
    handlers: {
      Preflight: docPreflight,
      CopyDocs: copyDocs,
      TopOff: topOff,
      TopOffForParent: topOff,
      AssertComplete: assertComplete,
      SetCutoverFlags: docSetCutoverFlags,
      StopTopOff: stopTopOff,
      Cleanup: docCleanup,
      RevertAsked: docRevert,
      Revert: docRevert,
      Summarize: docSummarize,
    },
  },
  'online-alter': {
    name: 'online-alter',
    parse: (raw) => parseOnlineAlterInput(raw),
    connections: (input) => connectionsAt(input, 'mysql', ['table.connection']),
    handlers: {
      Preflight: alterPreflight,
      CreateShadow: createShadow,
      CopyChunks: alterCopyChunks,
      Verify: alterVerify,
      SwapTables: swapTables,
      AbandonAlter: abandonAlter,
      TakeBackCapture: abandonAlter,
      AbandonRequested: abandonAlter,
      Cleanup: alterCleanup,
      RevertAsked: alterRevert,
      Revert: alterRevert,
      Summarize: alterSummarize,
    },
    besideApproval: {
      cutover: alterReverify as Handler,
    },
    leftOnStop: triggersLeft,
  },
};
