import { checkpointTable, holdOwnership, ownedBy } from '../checkpoints.ts';
import { OwnershipLost } from '../errors.ts';
import { addId, fromBig, toBig, type Id } from '../ids.ts';
import { quoteIdent } from '../identifiers.ts';
import { str, type SqlConnection } from '../ports/sql.ts';
import { tableExists } from './inspector.ts';

export const PARTITIONS_TABLE = '_ferry_partitions';

/** The partitions of a table copied by another key than one integer id: their bounds are keys (see KeyShape.encode). */
export const KEY_PARTITIONS_TABLE = '_ferry_key_partitions';

/**
 * One of the ranges an initial copy is split into, copied on its own with its own checkpoint: the
 * ids `lo` to `hi`, or, for a table copied by another key, the keys after `lo` (from the lowest
 * when null) up to `hi`.
 */
export interface PartitionBounds {
  readonly index: number;
  readonly lo: Id | null;
  readonly hi: Id;
}

/**
 * Splits `[lo, hi]` into at most `count` contiguous ranges of equal id span (never an empty one):
 * every id in exactly one. Spans are by id, not by rows, so a table whose ids cluster copies
 * unevenly; reading the rows' quantiles would cost a scan of the whole index.
 */
export function splitRange(lo: Id, hi: Id, count: number): (PartitionBounds & { readonly lo: Id })[] {
  const a = toBig(lo);
  const span = toBig(hi) - a + 1n;
  if (span <= 0n) return [];
  const n = BigInt(count) < span ? BigInt(Math.max(1, count)) : span;
  const out: (PartitionBounds & { readonly lo: Id })[] = [];
  for (let i = 0n; i < n; i++) {
    const from = a + (span * i) / n;
    const to = a + (span * (i + 1n)) / n - 1n;
    out.push({ index: Number(i), lo: fromBig(from), hi: fromBig(to) });
  }
  return out;
}

/** A partition's durable state: its bounds and the chunk loop's own state over them. */
export interface PartitionRow<S> {
  readonly bounds: PartitionBounds;
  readonly done: boolean;
  readonly state: S;
}

/**
 * The partitions' checkpoints: a row each beside the migration's checkpoint, in the target
 * database, written only while the migration's checkpoint names the same owning execution.
 */
export class PartitionStore<S> {
  private readonly table: string;
  private readonly name: string;
  /** How a bound is written: an exact decimal id, or a key as its text. */
  private readonly bound: string;
  /** `keyed`: the partitions of a table copied by another key than one integer id. */
  constructor(private readonly conn: SqlConnection, private readonly database: string, private readonly migrationId: string, private readonly keyed = false) {
    this.name = keyed ? KEY_PARTITIONS_TABLE : PARTITIONS_TABLE;
    this.table = `${quoteIdent(database)}.${quoteIdent(this.name)}`;
    this.bound = keyed ? '?' : 'CAST(? AS DECIMAL(20,0))';
  }

  async ensureTable(): Promise<void> {
    await this.conn.execute(
      `CREATE TABLE IF NOT EXISTS ${this.table} (
        migration_id VARCHAR(80) NOT NULL,
        part INT UNSIGNED NOT NULL,
        lo ${this.keyed ? 'MEDIUMTEXT NULL' : 'DECIMAL(20,0) NOT NULL'},
        hi ${this.keyed ? 'MEDIUMTEXT' : 'DECIMAL(20,0)'} NOT NULL,
        done TINYINT NOT NULL DEFAULT 0,
        state LONGTEXT NOT NULL,
        updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
        PRIMARY KEY (migration_id, part)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    );
  }

  /** Every partition of the migration, in order; empty when none was planned. Writes nothing. */
  async all(): Promise<PartitionRow<S>[]> {
    if (!(await tableExists(this.conn, this.database, this.name))) return [];
    const rows = await this.conn.query(`SELECT part, CAST(lo AS CHAR) AS lo, CAST(hi AS CHAR) AS hi, done, state FROM ${this.table} WHERE migration_id = ? ORDER BY part`, [this.migrationId]);
    return rows.map((r) => ({
      bounds: { index: Number(str(r, 'part')), lo: str(r, 'lo'), hi: str(r, 'hi')! },
      done: str(r, 'done') === '1',
      state: JSON.parse(str(r, 'state')!) as S,
    }));
  }

  /**
   * Records the plan, all of it or none (one transaction), and only while `owner` still owns the
   * migration; a plan already recorded is kept as it is.
   */
  async plan(partitions: readonly PartitionRow<S>[], owner: string | null | undefined): Promise<void> {
    await this.ensureTable();
    if (partitions.length === 0) return;
    await this.conn.transaction(async (tx) => {
      await holdOwnership(tx, this.database, this.migrationId, owner, 'its partitions plan');
      await tx.execute(
        `INSERT IGNORE INTO ${this.table} (migration_id, part, lo, hi, done, state) VALUES ${partitions.map(() => `(?, ?, ${this.bound}, ${this.bound}, ?, ?)`).join(', ')}`,
        partitions.flatMap((p) => [this.migrationId, p.bounds.index, p.bounds.lo, p.bounds.hi, p.done ? 1 : 0, JSON.stringify(p.state)]),
      );
    });
  }

  /**
   * Writes a partition's state if, and only if, `owner` still owns the migration (its checkpoint's
   * owner, as CheckpointStore.save checks it): a task of a replaced execution writes nothing.
   */
  async save(index: number, state: S, done: boolean, owner: string | null | undefined): Promise<void> {
    const { affectedRows } = await this.conn.execute(
      `UPDATE ${this.table} p JOIN ${checkpointTable(this.database)} c ON c.migration_id = p.migration_id
          SET p.state = ?, p.done = ?, p.updated_at = CURRENT_TIMESTAMP(6)
        WHERE p.migration_id = ? AND p.part = ? AND ${ownedBy('c')}`,
      [JSON.stringify(state), done ? 1 : 0, this.migrationId, index, owner ?? 'null'],
    );
    if (affectedRows === 1) return;
    throw new OwnershipLost(`migration "${this.migrationId}" is no longer owned by ${owner ?? '(no execution)'}: this task of partition ${index + 1} stops without writing its checkpoint`);
  }

  /** Forgets the partitions once their progress is in the migration's checkpoint. */
  async remove(): Promise<void> {
    if (await tableExists(this.conn, this.database, this.name)) await this.conn.execute(`DELETE FROM ${this.table} WHERE migration_id = ?`, [this.migrationId]);
  }
}

/** The id (or key) just below a partition: where its copy and its verification start from; null: from the lowest key. */
export function justBelow(bounds: PartitionBounds, keyed = false): Id | null {
  return keyed ? bounds.lo : addId(bounds.lo!, -1);
}
