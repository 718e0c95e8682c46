import { z } from 'zod';
import type { MigrationBinding } from './ports/claims.ts';
import { chunkSchema, connectionName, executionSchema, migrationId, plainName, throttleSchema, rowCleanupFields, reverifySchema } from './input-parts.ts';

/** Longest table name whose `_<table>_new` / `_<table>_old` still fits MySQL's 64 characters. */
export const MAX_ALTERED_TABLE_NAME = 59;

/**
 * Why an ALTER clause is refused before it reaches the database, or null when it is one clause
 * for the shadow table. The database parses it for real on a scratch table during Preflight.
 */
export function alterClauseProblem(clause: string): string | null {
  const text = clause.trim();
  if (text.length === 0) return 'is empty: give the clause that follows ALTER TABLE, e.g. "MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT"';
  if (/;/.test(text)) return 'must be one clause with no ";" (ferry applies it to the shadow table only)';
  if (/--|\/\*|#/.test(text)) return 'must not contain comments';
  if (/^\s*ALTER\s+TABLE\b/i.test(text)) return 'is the clause only, without "ALTER TABLE <name>"';
  if (/\bRENAME\b(?!\s+(COLUMN|INDEX|KEY)\b)/i.test(text)) return 'must not RENAME the table: ferry swaps the tables itself after the cutover approval (RENAME COLUMN and RENAME INDEX are fine)';
  if (/\bDROP\s+(TABLE|DATABASE|SCHEMA)\b/i.test(text)) return 'must not drop tables or databases';
  if (/\b(PARTITION|DISCARD|IMPORT)\s+TABLESPACE\b|\bDISCARD\b|\bIMPORT\b/i.test(text)) return 'must not discard or import tablespaces';
  return null;
}

export const onlineAlterInputSchema = z.strictObject({
  migrationId,
  table: z.strictObject({
    connection: connectionName,
    database: plainName('database'),
    table: plainName('table').max(MAX_ALTERED_TABLE_NAME, `at most ${MAX_ALTERED_TABLE_NAME} characters, so _<table>_new fits MySQL's 64`),
  }),
  alter: z
    .string()
    .max(4000)
    .superRefine((clause, ctx) => {
      const problem = alterClauseProblem(clause);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
  /** Lets an ALTER add or narrow a unique key: existing rows are checked, and a clash fails the migration instead of deleting. */
  allowNewUniqueKeys: z.boolean().default(false),
  chunk: chunkSchema,
  throttle: throttleSchema,
  cutover: z
    .strictObject({
      /** How long the RENAME may wait for the table's metadata lock; every query on the table queues behind it meanwhile. */
      lockWaitSeconds: z.number().int().min(1).max(60).default(2),
      attempts: z.number().int().min(1).max(100).default(10),
    })
    .prefault({}),
  reverify: reverifySchema,
  /**
   * From the swap until the cleanup, triggers on the altered table log the key of every row the
   * application writes, so `ferry revert` compares those rows alone (false: no trigger after the
   * swap, and a revert compares the whole table).
   */
  revertWindow: z.boolean().default(true),
  cleanup: z
    .strictObject({
      mode: z.enum(['trickle-delete', 'drop', 'none']).default('trickle-delete'),
      ...rowCleanupFields,
    })
    .prefault({}),
  execution: executionSchema,
});

export type OnlineAlterInput = z.output<typeof onlineAlterInputSchema>;

export function alterIdentityOf(i: OnlineAlterInput): Record<string, unknown> {
  return { table: i.table, alter: i.alter.trim(), cleanup: { mode: i.cleanup.mode } };
}

/** What the migration id is bound to (see migration-claims.ts): the table it alters, by connection name. */
export function alterBindingOf(i: OnlineAlterInput): MigrationBinding {
  return { machine: 'online-alter', source: { connection: i.table.connection, database: i.table.database, table: i.table.table } };
}
