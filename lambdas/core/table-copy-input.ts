import { z } from 'zod';
import type { MigrationBinding } from './ports/claims.ts';
import { chunkSchema, decimalString, executionSchema, flagSet, migrationId, tableRef, throttleSchema, rowCleanupFields, reverifySchema } from './input-parts.ts';

export { parseInput } from './input-parts.ts';

export const tableCopyInputSchema = z
  .strictObject({
    migrationId,
    source: tableRef,
    target: tableRef,
    /** Left out: chosen by RaiseAutoIncrement from the source's insert rate (see id-offset.ts). */
    idOffset: decimalString.optional(),
    catchUp: z
      .strictObject({
        quietSeconds: z.number().int().min(0).max(86_400, 'at most 86400 (a day)').default(30),
        pollSeconds: z.number().int().min(1).max(3600).default(5),
      })
      .prefault({}),
    chunk: chunkSchema,
    /**
     * The initial copy split into this many id ranges, copied at once by a Map state (each its own
     * chunk loop and checkpoint row). 1: one chunk loop. On a resumed run whose ranges are already
     * planned, it (2 or more) sets only how many copy at once. At most 40: what an inline Map state
     * runs at once.
     */
    partitions: z.number().int().min(1).max(40, 'at most 40 (an inline Map state runs at most 40 at once)').default(1),
    throttle: throttleSchema,
    reverify: reverifySchema,
    flags: z.strictObject({ copy: flagSet.default({}), cutover: flagSet.default({}) }).prefault({}),
    /**
     * From the copy flags until the cleanup, triggers on the target log the id of every row the
     * application updates or deletes there, so `ferry revert` compares only the ledger spans they
     * fall in (false: no trigger, and a revert compares every span). A table keyed by anything but
     * one integer id has no window.
     */
    revertWindow: z.boolean().default(true),
    cleanup: z
      .strictObject({
        mode: z.enum(['trickle-delete', 'truncate', 'none']).default('trickle-delete'),
        ...rowCleanupFields,
      })
      .prefault({}),
    execution: executionSchema,
  })
  .refine((i) => !(i.source.connection === i.target.connection && i.source.database === i.target.database && i.source.table === i.target.table), {
    message: 'target must be a different table from source',
    path: ['target', 'table'],
  });

export type TableCopyInput = z.output<typeof tableCopyInputSchema>;

/**
 * The part of the input that identifies what is migrated. A resumed run must match it;
 * tuning (chunk, throttle, catch-up, execution) may change between runs.
 */
export function identityOf(i: TableCopyInput): Record<string, unknown> {
  return { source: i.source, target: i.target, idOffset: i.idOffset ?? 'auto', flags: i.flags, cleanup: { mode: i.cleanup.mode } };
}

/** What the migration id is bound to (see migration-claims.ts): both tables, by connection name. */
export function tableCopyBindingOf(i: TableCopyInput): MigrationBinding {
  const place = (r: TableCopyInput['source']) => ({ connection: r.connection, database: r.database, table: r.table });
  return { machine: 'table-copy', source: place(i.source), target: place(i.target) };
}
