import { doctypeCopyInputSchema } from './doctype-copy-input.ts';
import { parseInput } from './input-parts.ts';
import { withKnobs, type Tuned } from './knobs.ts';
import { onlineAlterInputSchema } from './online-alter-input.ts';
import { tableCopyInputSchema } from './table-copy-input.ts';

/** Each machine's input schema, by machine name. */
export const INPUT_SCHEMAS = {
  'table-copy': tableCopyInputSchema,
  'online-alter': onlineAlterInputSchema,
  'doctype-copy': doctypeCopyInputSchema,
} as const;

export type MachineName = keyof typeof INPUT_SCHEMAS;

/** Which machine an execution input is for, by the field only that machine has. */
export function machineOfInput(raw: unknown): MachineName {
  if (raw && typeof raw === 'object' && 'docTypes' in raw) return 'doctype-copy';
  if (raw && typeof raw === 'object' && 'alter' in raw) return 'online-alter';
  return 'table-copy';
}

/** An execution input (validated; InvalidInput when it is not) with the knobs put in, as the tasks would. */
export function tuneInput(raw: unknown, knobs: Readonly<Record<string, string>>): Tuned<unknown> {
  const schema = INPUT_SCHEMAS[machineOfInput(raw)];
  return withKnobs(schema, parseInput(schema, raw), knobs);
}

/** The migration input an execution was started with: an operator's input, or a continuation's `{migration}`; undefined when it is not JSON. */
export function migrationInputOfExecution(input: string | undefined): unknown {
  try {
    const parsed = JSON.parse(input ?? '{}') as { migration?: unknown };
    return parsed.migration ?? parsed;
  } catch {
    return undefined;
  }
}
