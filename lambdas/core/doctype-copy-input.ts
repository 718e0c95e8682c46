import { z } from 'zod';
import type { MigrationBinding } from './ports/claims.ts';
import { connectionName, executionSchema, flagSet, knobFields, migrationId } from './input-parts.ts';

/** CouchDB's rule for database names. */
const couchDbName = z
  .string()
  .regex(/^[a-z][a-z0-9_$()+/-]{0,237}$/, 'must be a CouchDB database name: lower-case letter first, then a-z 0-9 _ $ ( ) + - /');

const couchRef = z.strictObject({ connection: connectionName, database: couchDbName });

/** A view of the source keyed `[doc_type, _id]`, as `design/view`. */
const viewName = z.string().regex(/^[A-Za-z0-9_.-]{1,128}\/[A-Za-z0-9_.-]{1,128}$/, 'must name a view as "design/view", e.g. "all_docs/by_doc_type"');

const sourceRef = couchRef.extend({
  /** An existing view keyed `[doc_type, _id]` to page and count the wanted docs by (CommCare: `all_docs/by_doc_type`). */
  docTypeView: viewName.optional(),
});

const targetRef = couchRef.extend({
  /** Create the target database when it is missing. */
  create: z.boolean().default(true),
});

const docType = z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,127}$/, 'doc types are names like "CommCareUser": letters, digits, _ . -');

export const doctypeCopyInputSchema = z
  .strictObject({
    migrationId,
    source: sourceRef,
    target: targetRef,
    /** Without a docTypeView: let ferry build its own view in the source (`_design/ferry`) instead of reading every doc. */
    allowSourceView: z.boolean().default(false),
    docTypes: z
      .array(docType, 'must be a list of doc type names, e.g. ["CommCareUser", "WebUser"]')
      .min(1, 'name at least one doc type')
      .max(200)
      .refine((t) => new Set(t).size === t.length, 'lists a doc type twice'),
    page: z.strictObject({ docs: knobFields['page.docs'].default(1000) }).prefault({}),
    topOff: z
      .strictObject({
        quietSeconds: z.number().int().min(0).max(86_400).default(30),
        pollSeconds: z.number().int().min(1).max(3600).default(5),
        /** How far (in changes) the checkpoint may trail the source when the initial copy is declared complete. */
        maxSeqLag: z.number().int().min(0).max(1_000_000).default(100),
      })
      .prefault({}),
    flags: z.strictObject({ cutover: flagSet.default({}) }).prefault({}),
    cleanup: z
      .strictObject({
        mode: z.enum(['delete', 'none']).default('delete'),
        batchDocs: knobFields['cleanup.batchDocs'].default(500),
        pauseMillis: knobFields['cleanup.pauseMillis'].default(0),
      })
      .prefault({}),
    execution: executionSchema,
  })
  .refine((i) => !(i.source.connection === i.target.connection && i.source.database === i.target.database), {
    message: 'target must be a different database from source',
    path: ['target', 'database'],
  });

export type DoctypeCopyInput = z.output<typeof doctypeCopyInputSchema>;

export function doctypeIdentityOf(i: DoctypeCopyInput): Record<string, unknown> {
  const where = (r: { connection: string; database: string }) => ({ connection: r.connection, database: r.database });
  return { source: where(i.source), target: where(i.target), docTypes: [...i.docTypes].sort(), flags: i.flags, cleanup: { mode: i.cleanup.mode } };
}

/** What the migration id is bound to (see migration-claims.ts): both databases, by connection name, and the doc types. */
export function doctypeBindingOf(i: DoctypeCopyInput): MigrationBinding {
  const place = (r: { connection: string; database: string }) => ({ connection: r.connection, database: r.database });
  return { machine: 'doctype-copy', source: place(i.source), target: place(i.target), docTypes: [...i.docTypes].sort() };
}
