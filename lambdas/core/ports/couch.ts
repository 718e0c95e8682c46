/** One row of a `_changes` feed read with `style=all_docs` and `include_docs=true`. */
export interface ChangeRow {
  readonly id: string;
  readonly seq: string;
  /** Every leaf revision of the document, winner first. */
  readonly changes: readonly { readonly rev: string }[];
  readonly deleted?: boolean;
  readonly doc?: { readonly doc_type?: unknown } | null;
}

/** A document as the HTTP API returns it; bodies are opaque to ferry except `doc_type`. */
export interface CouchDoc {
  readonly _id: string;
  readonly _rev: string;
  readonly _deleted?: boolean;
  readonly _conflicts?: readonly string[];
  readonly _revisions?: { readonly start: number; readonly ids: readonly string[] };
  readonly doc_type?: unknown;
  readonly [key: string]: unknown;
}

export interface AllDocsRow {
  readonly id: string;
  readonly value: { readonly rev: string; readonly deleted?: boolean };
  readonly doc?: CouchDoc | null;
  readonly error?: string;
}

/** The CouchDB port: just the calls ferry makes, on one database. */
export interface CouchDatabase {
  readonly connection: string;
  readonly name: string;
  /** Where it lives, without credentials. */
  readonly where: string;
  /** `update_seq` and `doc_count`, or null when the database does not exist. */
  info(): Promise<{ updateSeq: string; docCount: number } | null>;
  /** Creates the database; true when it did, false when it already existed. */
  create(): Promise<boolean>;
  allDocs(qs: Record<string, unknown>, keys?: readonly string[]): Promise<AllDocsRow[]>;
  changes(since: string, limit: number): Promise<{ results: ChangeRow[]; lastSeq: string }>;
  /** Each requested revision with its `_revisions` history and attachments inline, and those the database could not give. */
  bulkGet(items: readonly { id: string; rev: string }[]): Promise<{ docs: CouchDoc[]; missing: { id: string; rev: string; error: string }[] }>;
  /** Writes revisions as they are (`new_edits: false`): history, tombstones and conflicts kept. */
  writeRevisions(docs: readonly CouchDoc[]): Promise<void>;
  /** Ordinary writes (new revisions); throws naming every document refused. */
  bulkDocs(docs: readonly Record<string, unknown>[]): Promise<void>;
  /** Which of these revisions the database does not have. */
  revsDiff(revs: Readonly<Record<string, readonly string[]>>): Promise<Record<string, readonly string[]>>;
  view(ddoc: string, view: string, qs: Record<string, unknown>, keys?: readonly unknown[]): Promise<{ rows: { key: unknown; value: unknown; id?: string; doc?: CouchDoc | null }[] }>;
  get(id: string, qs?: Record<string, unknown>): Promise<CouchDoc | null>;
  put(doc: Record<string, unknown>): Promise<{ rev: string }>;
}

export interface CouchConnector {
  /** Unknown connection names throw InvalidInput; a server that does not answer, TransientError. */
  database(connection: string, name: string): Promise<CouchDatabase>;
}
