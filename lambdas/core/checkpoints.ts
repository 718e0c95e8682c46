import type { SqlConnection } from './ports/sql.ts';
import { str } from './ports/sql.ts';
import { CheckpointConflict, OwnershipLost } from './errors.ts';
import { quoteIdent } from './identifiers.ts';
import { tableExists } from './tables/inspector.ts';

export const CHECKPOINT_TABLE = '_ferry_checkpoints';

/**
 * The durable cursor of a migration, kept in the target database beside the data it describes,
 * so a new run (local or a new AWS execution) resumes from it.
 */
export interface Checkpoint<S> {
  readonly migrationId: string;
  readonly machine: string;
  readonly phase: string;
  readonly state: S;
  readonly updatedAt: string;
}

/** Keys sorted at every level, so equal identities serialize to equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Top-level keys whose values differ between two identities, for a message that says what changed. */
function changedKeys(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => canonicalJson(a[k]) !== canonicalJson(b[k])).sort();
}

/** Refuses a checkpoint made by another machine or for another input under the same migrationId. */
export function assertSameIdentity(
  where: string,
  migrationId: string,
  stored: { machine: string; identity: Record<string, unknown> },
  wanted: { machine: string; identity: Record<string, unknown> },
): void {
  if (stored.machine === wanted.machine && canonicalJson(stored.identity) === canonicalJson(wanted.identity)) return;
  const what = stored.machine !== wanted.machine ? [`machine (${stored.machine})`] : changedKeys(stored.identity, wanted.identity);
  throw new CheckpointConflict(
    `migration "${migrationId}" already has a checkpoint in ${where} made with a different ${what.join(', ')}. ` +
      'Use the input it was started with, or choose a new migrationId.',
  );
}

export class CheckpointStore<S> {
  private readonly table: string;
  constructor(private readonly conn: SqlConnection, private readonly database: string, private readonly machine: string) {
    this.table = `${quoteIdent(database)}.${quoteIdent(CHECKPOINT_TABLE)}`;
  }

  async ensureTable(): Promise<void> {
    await this.conn.execute(
      `CREATE TABLE IF NOT EXISTS ${this.table} (
        migration_id VARCHAR(80) NOT NULL PRIMARY KEY,
        machine VARCHAR(32) NOT NULL,
        identity TEXT NOT NULL,
        phase VARCHAR(32) NOT NULL,
        state LONGTEXT NOT NULL,
        created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
        updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    );
  }

  /** The checkpoint, or null when the table or the row does not exist yet. Reading writes nothing. */
  async load(migrationId: string, identity: Record<string, unknown>): Promise<Checkpoint<S> | null> {
    if (!(await tableExists(this.conn, this.database, CHECKPOINT_TABLE))) return null;
    const rows = await this.conn.query(`SELECT machine, identity, phase, state, updated_at FROM ${this.table} WHERE migration_id = ?`, [migrationId]);
    const row = rows[0];
    if (!row) return null;
    const machine = str(row, 'machine')!;
    const stored = JSON.parse(str(row, 'identity')!) as Record<string, unknown>;
    assertSameIdentity(this.table, migrationId, { machine, identity: stored }, { machine: this.machine, identity });
    return { migrationId, machine, phase: str(row, 'phase')!, state: JSON.parse(str(row, 'state')!) as S, updatedAt: str(row, 'updated_at')! };
  }

  async create(migrationId: string, identity: Record<string, unknown>, phase: string, state: S): Promise<Checkpoint<S>> {
    await this.ensureTable();
    await this.conn.execute(
      `INSERT INTO ${this.table} (migration_id, machine, identity, phase, state) VALUES (?, ?, ?, ?, ?)`,
      [migrationId, this.machine, canonicalJson(identity), phase, JSON.stringify(state)],
    );
    return (await this.load(migrationId, identity))!;
  }

  /**
   * Writes the checkpoint if, and only if, it is still owned by `owner` (the state's own owner
   * unless told otherwise): a compare-and-set, so a task of an execution that has been replaced
   * (stopped, timed out, still finishing a Lambda) can never overwrite its successor's progress.
   */
  async save(migrationId: string, phase: string, state: S, owner: string | null | undefined = (state as { owner?: string | null }).owner): Promise<void> {
    const { affectedRows } = await this.conn.execute(
      `UPDATE ${this.table} SET phase = ?, state = ?, updated_at = CURRENT_TIMESTAMP(6)
        WHERE migration_id = ? AND COALESCE(JSON_UNQUOTE(JSON_EXTRACT(state, '$.owner')), 'null') = ?`,
      [phase, JSON.stringify(state), migrationId, owner ?? 'null'],
    );
    if (affectedRows === 1) return;
    const rows = await this.conn.query(`SELECT JSON_UNQUOTE(JSON_EXTRACT(state, '$.owner')) AS owner FROM ${this.table} WHERE migration_id = ?`, [migrationId]);
    if (rows.length === 0) throw new CheckpointConflict(`checkpoint of "${migrationId}" vanished from ${this.table}`);
    throw new OwnershipLost(
      `execution ${str(rows[0]!, 'owner') ?? '(none)'} has taken migration "${migrationId}" over; this task of ${owner ?? '(no execution)'} stops without writing its checkpoint (the owner redoes at most the one unit of work it did)`,
    );
  }

  /**
   * Sets one field of the state and nothing else, only while the migration is still in `phase` and
   * owned by `owner`, in one statement: work done beside an execution's wait (the re-verification
   * while an approval is pending) never overwrites what the execution itself writes once it goes on.
   * False when the migration has moved on.
   */
  async setStateField(migrationId: string, field: string, value: unknown, when: { phase: string; owner: string | null | undefined }): Promise<boolean> {
    if (!/^[A-Za-z][A-Za-z0-9]*$/.test(field)) throw new TypeError(`not a state field name: ${field}`);
    const { affectedRows } = await this.conn.execute(
      `UPDATE ${this.table} SET state = JSON_SET(state, '$.${field}', JSON_QUERY(?, '$')), updated_at = CURRENT_TIMESTAMP(6)
        WHERE migration_id = ? AND phase = ? AND COALESCE(JSON_UNQUOTE(JSON_EXTRACT(state, '$.owner')), 'null') = ?`,
      [JSON.stringify(value), migrationId, when.phase, when.owner ?? 'null'],
    );
    return affectedRows === 1;
  }

  /** One field of the state as the checkpoint holds it now (undefined: no checkpoint, or no such field). Writes nothing. */
  async stateField<T>(migrationId: string, field: string): Promise<T | undefined> {
    if (!/^[A-Za-z][A-Za-z0-9]*$/.test(field)) throw new TypeError(`not a state field name: ${field}`);
    if (!(await tableExists(this.conn, this.database, CHECKPOINT_TABLE))) return undefined;
    const rows = await this.conn.query(`SELECT JSON_EXTRACT(state, '$.${field}') AS v FROM ${this.table} WHERE migration_id = ?`, [migrationId]);
    const v = rows.length ? str(rows[0]!, 'v') : null;
    return v === null || v === undefined ? undefined : (JSON.parse(v) as T);
  }

  /** The migration's phase and owning execution as the checkpoint holds them now (null: no checkpoint). Writes nothing. */
  async phaseAndOwner(migrationId: string): Promise<{ phase: string; owner: string | null } | null> {
    if (!(await tableExists(this.conn, this.database, CHECKPOINT_TABLE))) return null;
    const rows = await this.conn.query(`SELECT phase, JSON_UNQUOTE(JSON_EXTRACT(state, '$.owner')) AS owner FROM ${this.table} WHERE migration_id = ?`, [migrationId]);
    return rows.length === 0 ? null : { phase: str(rows[0]!, 'phase')!, owner: str(rows[0]!, 'owner') };
  }

  /** The execution that owns the migration, null when none is recorded, undefined when there is no checkpoint. Writes nothing. */
  async owner(migrationId: string): Promise<string | null | undefined> {
    if (!(await tableExists(this.conn, this.database, CHECKPOINT_TABLE))) return undefined;
    const rows = await this.conn.query(`SELECT JSON_UNQUOTE(JSON_EXTRACT(state, '$.owner')) AS owner FROM ${this.table} WHERE migration_id = ?`, [migrationId]);
    return rows.length === 0 ? undefined : str(rows[0]!, 'owner');
  }

  /** Forgets the migration: a later run with the same input starts from the beginning. */
  async remove(migrationId: string): Promise<void> {
    if (await tableExists(this.conn, this.database, CHECKPOINT_TABLE)) await this.conn.execute(`DELETE FROM ${this.table} WHERE migration_id = ?`, [migrationId]);
  }
}

/**
 * Inside a transaction: refuses unless `owner` owns the migration, and holds a shared lock on its
 * checkpoint until the transaction ends, so no other execution can take it over meanwhile (a
 * takeover's save waits). What the transaction writes is then written by the owner or not at all.
 */
export async function holdOwnership(tx: SqlConnection, database: string, migrationId: string, owner: string | null | undefined, what: string): Promise<void> {
  const rows = await tx.query(
    `SELECT COALESCE(JSON_UNQUOTE(JSON_EXTRACT(state, '$.owner')), 'null') AS owner FROM ${quoteIdent(database)}.${quoteIdent(CHECKPOINT_TABLE)} WHERE migration_id = ? LOCK IN SHARE MODE`,
    [migrationId],
  );
  const current = rows[0] ? str(rows[0], 'owner') : null;
  if (current !== (owner ?? 'null')) {
    throw new OwnershipLost(`migration "${migrationId}" is owned by ${current ?? '(nobody: no checkpoint)'}, not ${owner ?? '(no execution)'}: ${what} is not written by this task`);
  }
}

/**
 * The condition, on the checkpoint row `alias` (joined by migration_id), that the migration is
 * owned by the execution given as its one placeholder (`'null'` for none): a write joined to it is
 * made by the owner or not at all, in the same statement.
 */
export function ownedBy(alias: string): string {
  return `COALESCE(JSON_UNQUOTE(JSON_EXTRACT(${alias}.state, '$.owner')), 'null') = ?`;
}

/** The checkpoint table of a database, quoted. */
export function checkpointTable(database: string): string {
  return `${quoteIdent(database)}.${quoteIdent(CHECKPOINT_TABLE)}`;
}
