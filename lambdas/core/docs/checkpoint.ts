import type { CouchDatabase } from '../ports/couch.ts';
import { assertSameIdentity } from '../checkpoints.ts';
import { TransientError, WriteConflict } from '../errors.ts';

/**
 * A migration's checkpoint as a `_local/` document in the target database: never replicated,
 * kept beside the documents it describes. Updates are read-modify-write with the doc's `_rev`,
 * retried when another task of the same execution (the top-off beside the approvals) wrote first.
 */
export class DocCheckpointStore<S extends object> {
  readonly id: string;
  constructor(private readonly db: CouchDatabase, migrationId: string, private readonly machine: string) {
    this.id = `_local/ferry-${migrationId}`;
  }

  async load(migrationId: string, identity: Record<string, unknown>): Promise<{ phase: string; state: S } | null> {
    const doc = (await this.db.get(this.id)) as unknown as { machine: string; identity: Record<string, unknown>; phase: string; state: S } | null;
    if (!doc) return null;
    assertSameIdentity(`${this.db.name}/${this.id}`, migrationId, doc, { machine: this.machine, identity });
    return { phase: doc.phase, state: doc.state };
  }

  async create(identity: Record<string, unknown>, phase: string, state: S): Promise<void> {
    await this.db.put({ _id: this.id, machine: this.machine, identity, phase, state, updatedAt: new Date().toISOString() });
  }

  /** Applies `change` to the freshest copy and writes it; returns what was written. */
  async update(change: (current: { phase: string; state: S }) => { phase: string; state: S }): Promise<{ phase: string; state: S }> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const doc = (await this.db.get(this.id)) as unknown as Record<string, unknown> & { phase: string; state: S; _rev: string };
      if (!doc) throw new TransientError(`checkpoint ${this.id} vanished from ${this.db.name}`);
      const next = change({ phase: doc.phase, state: structuredClone(doc.state) });
      try {
        await this.db.put({ ...doc, phase: next.phase, state: next.state, updatedAt: new Date().toISOString() });
        return next;
      } catch (err) {
        if (!(err instanceof WriteConflict)) throw err;
      }
    }
    throw new TransientError(`checkpoint ${this.id}: ten writes in a row lost to concurrent updates`);
  }
}
