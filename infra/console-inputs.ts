import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { doctypeCopyInputSchema } from '../lambdas/core/doctype-copy-input.ts';
import { onlineAlterInputSchema } from '../lambdas/core/online-alter-input.ts';
import { tableCopyInputSchema } from '../lambdas/core/table-copy-input.ts';

export type MachineName = 'table-copy' | 'doctype-copy' | 'online-alter';

/** Each machine's input schema and the example in `examples/` an operator can start from. */
const MACHINE_INPUTS: Record<MachineName, { schema: z.ZodType; example: string }> = {
  'table-copy': { schema: tableCopyInputSchema, example: 'csmh-extended.json' },
  'doctype-copy': { schema: doctypeCopyInputSchema, example: 'user-db-migration.json' },
  'online-alter': { schema: onlineAlterInputSchema, example: 'csm-bigint.json' },
};

/** The example execution input of a machine, as the README and the stack's outputs show it. */
export function consoleExample(machine: MachineName): unknown {
  return JSON.parse(readFileSync(new URL(`../examples/${MACHINE_INPUTS[machine].example}`, import.meta.url), 'utf8'));
}

/**
 * The JSON schema of a machine's execution input, generated from the zod schema the tasks parse
 * it with, so the two never drift: what an operator may type in the console, with defaults.
 */
export function inputJsonSchema(machine: MachineName): Record<string, unknown> {
  const schema = z.toJSONSchema(MACHINE_INPUTS[machine].schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { $id: `https://ferry.invalid/schemas/${machine}.schema.json`, title: `ferry ${machine} execution input`, ...schema };
}

export const MACHINE_NAMES = Object.keys(MACHINE_INPUTS) as MachineName[];
