import type { Hole } from '../holes.ts';
import type { Id } from '../ids.ts';
import type { KeyRange, KeyValue } from '../keys.ts';
import { quoteIdent } from '../identifiers.ts';
import { str, type SqlConnection } from '../ports/sql.ts';
import { checkpointTable, ownedBy } from '../checkpoints.ts';
import { OwnershipLost } from '../errors.ts';

export const LEDGER_TABLE = '_ferry_ledger';

/** Holes kept for one span at the most (about 50 KB), when the low water is not known; past that none are kept (see LedgerEntry.holes). */
export const MAX_HOLES_KEPT = 2000;

/**
 * One span of source ids and what ferry knows of it: every id in `[lo, hi]` outside `holes` held a
 * row that is in the target (it was verified equal there, or copied and checked), so it is
 * delivered: from then on the target's copy belongs to the application, and the source's may be
 * deleted. A hole is an id that held no row when ferry looked; a row appearing there later was
 * committed late and is copied before anything else happens to it.
 */
export interface LedgerEntry {
  readonly lo: Id;
  readonly hi: Id;
  /** Rows delivered in the span. */
  readonly rows: string;
  /** The range checksum both sides agreed on when verified, or null for a span delivered row by row. */
  readonly checksum: string | null;
  /**
   * The ids of the span that held no row and may still receive one (see horizon.ts: holes below
   * the low water when the span was read are final and not kept). Null: not kept, because a write
   * transaction older than the id clock was open and there were too many to keep; the sweep then
   * settles the span by counting its rows.
   */
  readonly holes: readonly Hole[] | null;
  /**
   * Settled: no transaction that could still commit a row into a hole is open (see sweeper.ts), so
   * the holes were looked at for the last time. A span without holes is settled from the start.
   */
  readonly settled: boolean;
}

/** Ids are compared as exact decimals: a string compared with a DECIMAL column would go through a double. */
const ID = 'CAST(? AS DECIMAL(20,0))';

/**
 * A ledger beside a migration's checkpoint, in the target database. With `owner`, every write is
 * made only while that execution owns the migration (its checkpoint says so, see ownedBy), checked
 * in the same statement: a task of a replaced execution, still running, cannot replace or settle
 * its successor's spans.
 */
abstract class OwnedLedger {
  protected readonly table: string;
  constructor(
    protected readonly conn: SqlConnection,
    protected readonly database: string,
    protected readonly migrationId: string,
    protected readonly owner: { readonly execution: string | null | undefined } | undefined,
    name: string,
  ) {
    this.table = `${quoteIdent(database)}.${quoteIdent(name)}`;
  }

  /** The condition that makes a write the owner's, with its parameters; nothing when the ledger has no owner. */
  protected guard(): { where: string; params: unknown[] } {
    if (!this.owner) return { where: '', params: [] };
    return { where: ` AND EXISTS (SELECT 1 FROM ${checkpointTable(this.database)} c WHERE c.migration_id = ? AND ${ownedBy('c')})`, params: [this.migrationId, this.owner.execution ?? 'null'] };
  }

  /** Inserts one row (a statement's columns and values) only while the owner owns the migration. */
  protected async insertOwned(columns: string, row: string, values: readonly unknown[]): Promise<void> {
    if (!this.owner) {
      await this.conn.execute(`INSERT INTO ${this.table} ${columns} VALUES (${row})`, values);
      return;
    }
    const { affectedRows } = await this.conn.execute(
      `INSERT INTO ${this.table} ${columns} SELECT ${row} FROM ${checkpointTable(this.database)} c WHERE c.migration_id = ? AND ${ownedBy('c')}`,
      [...values, this.migrationId, this.owner.execution ?? 'null'],
    );
    if (affectedRows !== 1) throw await this.lost();
  }

  /** The refusal of a write by an execution that no longer owns the migration, naming the one that does. */
  protected async lost(): Promise<OwnershipLost> {
    const rows = await this.conn.query(`SELECT JSON_UNQUOTE(JSON_EXTRACT(state, '$.owner')) AS owner FROM ${checkpointTable(this.database)} WHERE migration_id = ?`, [this.migrationId]);
    const current = rows[0] ? str(rows[0], 'owner') : null;
    return new OwnershipLost(`execution ${current ?? '(none)'} has taken migration "${this.migrationId}" over; this task of ${this.owner?.execution ?? '(no execution)'} does not write its delivery ledger`);
  }

  /** After an UPDATE that changed nothing: throws when the migration has another owner, which must not go unnoticed. */
  protected async refuseIfLost(affectedRows: number): Promise<void> {
    if (affectedRows === 0 && this.owner && !(await this.stillOwned())) throw await this.lost();
  }

  private async stillOwned(): Promise<boolean> {
    const g = this.guard();
    const rows = await this.conn.query(`SELECT 1 AS owned FROM DUAL WHERE TRUE${g.where}`, g.params);
    return rows.length > 0;
  }
}

/** The delivery ledger of a migration copied by one integer id: spans of ids. */
export class DeliveryLedger extends OwnedLedger {
  constructor(conn: SqlConnection, database: string, migrationId: string, owner?: { readonly execution: string | null | undefined }) {
    super(conn, database, migrationId, owner, LEDGER_TABLE);
  }

  /** The same ledger written through another connection to its server (one inside a transaction). */
  on(conn: SqlConnection): DeliveryLedger {
    return new DeliveryLedger(conn, this.database, this.migrationId, this.owner);
  }

  async ensureTable(): Promise<void> {
    await this.conn.execute(
      `CREATE TABLE IF NOT EXISTS ${this.table} (
        migration_id VARCHAR(80) NOT NULL,
        lo DECIMAL(20,0) NOT NULL,
        hi DECIMAL(20,0) NOT NULL,
        source_rows BIGINT UNSIGNED NOT NULL,
        checksum VARCHAR(40) NULL,
        holes MEDIUMTEXT NOT NULL,
        hole_count INT UNSIGNED NOT NULL,
        settled TINYINT NOT NULL,
        recorded_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
        PRIMARY KEY (migration_id, lo),
        KEY unsettled (migration_id, settled, lo)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    );
  }

  private entry(row: Record<string, unknown>): LedgerEntry {
    const r = row as Parameters<typeof str>[0];
    return {
      lo: str(r, 'lo')!,
      hi: str(r, 'hi')!,
      rows: str(r, 'source_rows')!,
      checksum: str(r, 'checksum'),
      holes: JSON.parse(str(r, 'holes')!) as Hole[] | null,
      settled: str(r, 'settled') === '1',
    };
  }

  private async select(where: string, params: readonly unknown[], tail = 'ORDER BY lo'): Promise<LedgerEntry[]> {
    const rows = await this.conn.query(
      `SELECT lo, hi, source_rows, checksum, holes, settled FROM ${this.table} WHERE migration_id = ? AND ${where} ${tail}`,
      [this.migrationId, ...params],
    );
    return rows.map((r) => this.entry(r));
  }

  /** Records a span, replacing whatever was recorded for ids it covers. */
  async record(e: LedgerEntry): Promise<void> {
    const g = this.guard();
    await this.conn.execute(`DELETE FROM ${this.table} WHERE migration_id = ? AND lo <= ${ID} AND hi >= ${ID}${g.where}`, [this.migrationId, e.hi, e.lo, ...g.params]);
    const values = [this.migrationId, e.lo, e.hi, e.rows, e.checksum, JSON.stringify(e.holes), e.holes?.length ?? 0, e.settled ? 1 : 0];
    await this.insertOwned(`(migration_id, lo, hi, source_rows, checksum, holes, hole_count, settled)`, `?, ${ID}, ${ID}, ?, ?, ?, ?, ?`, values);
  }

  /** A span's holes, row count and settledness, after late rows were delivered or it was looked at for the last time. */
  async update(e: LedgerEntry): Promise<void> {
    const g = this.guard();
    const { affectedRows } = await this.conn.execute(
      `UPDATE ${this.table} SET source_rows = ?, holes = ?, hole_count = ?, settled = ?, recorded_at = CURRENT_TIMESTAMP(6) WHERE migration_id = ? AND lo = ${ID}${g.where}`,
      [e.rows, JSON.stringify(e.holes), e.holes?.length ?? 0, e.settled ? 1 : 0, this.migrationId, e.lo, ...g.params],
    );
    // Nothing written: the span is gone, or the migration has another owner.
    await this.refuseIfLost(affectedRows);
  }

  /** The highest id the ledger covers, or null when it is empty. */
  async top(): Promise<Id | null> {
    const rows = await this.conn.query(`SELECT MAX(hi) AS top FROM ${this.table} WHERE migration_id = ?`, [this.migrationId]);
    return rows[0] ? str(rows[0], 'top') : null;
  }

  /** The spans that overlap `[lo, hi]`, in order. */
  overlapping(lo: Id, hi: Id): Promise<LedgerEntry[]> {
    return this.select(`lo <= ${ID} AND hi >= ${ID}`, [hi, lo]);
  }

  /** Spans whose lowest id is above `after` (from the first with null), in order, at most `limit`. */
  spansAfter(after: Id | null, limit: number): Promise<LedgerEntry[]> {
    return after === null ? this.select('TRUE', [], `ORDER BY lo LIMIT ${Math.trunc(limit)}`) : this.select(`lo > ${ID}`, [after], `ORDER BY lo LIMIT ${Math.trunc(limit)}`);
  }

  /** Unsettled spans above `after` that end at or below `upTo`, in order, at most `limit`. */
  unsettled(after: Id | null, upTo: Id, limit: number): Promise<LedgerEntry[]> {
    return after === null
      ? this.select(`settled = 0 AND hi <= ${ID}`, [upTo], `ORDER BY lo LIMIT ${Math.trunc(limit)}`)
      : this.select(`settled = 0 AND lo > ${ID} AND hi <= ${ID}`, [after, upTo], `ORDER BY lo LIMIT ${Math.trunc(limit)}`);
  }

  /** Whether any span is unsettled. */
  async anyUnsettled(): Promise<boolean> {
    const rows = await this.conn.query(`SELECT 1 AS x FROM ${this.table} WHERE migration_id = ? AND settled = 0 LIMIT 1`, [this.migrationId]);
    return rows.length > 0;
  }

  /** Rows delivered over every span, and how many spans and holes there are. */
  async totals(): Promise<{ rows: string; spans: string; holes: string }> {
    const rows = await this.conn.query(
      `SELECT COALESCE(SUM(source_rows), 0) AS n, COUNT(*) AS spans, COALESCE(SUM(hole_count), 0) AS holes FROM ${this.table} WHERE migration_id = ?`,
      [this.migrationId],
    );
    const r = rows[0] ?? {};
    return { rows: str(r, 'n') ?? '0', spans: str(r, 'spans') ?? '0', holes: str(r, 'holes') ?? '0' };
  }
}

export const KEY_LEDGER_TABLE = '_ferry_key_ledger';

/**
 * One span of a migration copied by any other key than one integer column: the source's rows with
 * a key after `lo` (from the lowest when null) up to `hi`, numbered in key order (`seq`, from 1).
 * `rows` and `checksum` are the source's rows of the span as delivered (the XOR of their row
 * hashes, see checksum.ts): a span whose source rows still add up to them holds nothing new, and
 * one that differs tells, by how many rows it gained, which of the rows the target lacks arrived
 * late (see key-spans.ts). Its keys are encoded as the checkpoint encodes them (KeyShape.encode).
 */
export interface KeySpan {
  readonly seq: number;
  readonly lo: KeyValue | null;
  readonly hi: KeyValue;
  readonly rows: string;
  readonly checksum: string;
  /**
   * The trickle-delete was deleting the span's rows from the source (see deleteSpan) and had not
   * yet recorded it done: the source may hold them still, or none of them.
   */
  readonly deleting?: boolean;
}

/** The keys a span covers. */
export function spanRange(span: Pick<KeySpan, 'lo' | 'hi'>): KeyRange {
  return span.lo === null ? { lo: null, hi: span.hi } : { lo: span.lo, loExcluded: true, hi: span.hi };
}

/** How many span numbers a block holds: the migration's spans are numbered in one, each partition's in another (see spanBlock). */
const SPAN_BLOCK = 2 ** 32;

/**
 * The first span number of block `n`: block 0 is the migration's own until its initial copy is
 * split into partitions; partition i numbers its spans in block i + 1, and the migration goes on in
 * the block after the last partition's. Partitions cover ranges of keys in order, so numbers stay
 * in key order. (Numbers stay below 2^53: at most 40 partitions.)
 */
export function spanBlock(n: number): number {
  return n * SPAN_BLOCK + 1;
}

/**
 * The delivery ledger of a migration copied by any other key: contiguous spans of keys in key
 * order, each recorded after the one before it, beside the checkpoint in the target database.
 */
export class KeyLedger extends OwnedLedger {
  constructor(conn: SqlConnection, database: string, migrationId: string, owner?: { readonly execution: string | null | undefined }) {
    super(conn, database, migrationId, owner, KEY_LEDGER_TABLE);
  }

  on(conn: SqlConnection): KeyLedger {
    return new KeyLedger(conn, this.database, this.migrationId, this.owner);
  }

  async ensureTable(): Promise<void> {
    await this.conn.execute(
      `CREATE TABLE IF NOT EXISTS ${this.table} (
        migration_id VARCHAR(80) NOT NULL,
        seq BIGINT UNSIGNED NOT NULL,
        lo MEDIUMTEXT NULL,
        hi MEDIUMTEXT NOT NULL,
        source_rows BIGINT UNSIGNED NOT NULL,
        checksum VARCHAR(40) NOT NULL,
        deleting TINYINT NOT NULL DEFAULT 0,
        recorded_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
        PRIMARY KEY (migration_id, seq)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
    );
  }

  private async select(where: string, params: readonly unknown[], tail: string): Promise<KeySpan[]> {
    const rows = await this.conn.query(`SELECT seq, lo, hi, source_rows, checksum, deleting FROM ${this.table} WHERE migration_id = ? AND ${where} ${tail}`, [this.migrationId, ...params]);
    return rows.map((r) => ({ seq: Number(str(r, 'seq')), lo: str(r, 'lo'), hi: str(r, 'hi')!, rows: str(r, 'source_rows')!, checksum: str(r, 'checksum')!, deleting: str(r, 'deleting') === '1' }));
  }

  /**
   * Records the span numbered `seq`, after every span below it: spans numbered from it on in its
   * block (recorded by a run that stopped before its checkpoint said so) are replaced.
   */
  async append(span: KeySpan): Promise<void> {
    const g = this.guard();
    const blockEnd = (Math.floor((span.seq - 1) / SPAN_BLOCK) + 1) * SPAN_BLOCK + 1;
    await this.conn.execute(`DELETE FROM ${this.table} WHERE migration_id = ? AND seq >= ? AND seq < ?${g.where}`, [this.migrationId, span.seq, blockEnd, ...g.params]);
    await this.insertOwned('(migration_id, seq, lo, hi, source_rows, checksum)', '?, ?, ?, ?, ?, ?', [this.migrationId, span.seq, span.lo, span.hi, span.rows, span.checksum]);
  }

  /** What a span's source rows add up to now, after late rows were delivered into it (or its rows deleted from the source). */
  async update(span: Pick<KeySpan, 'seq' | 'rows' | 'checksum'>): Promise<void> {
    const g = this.guard();
    const { affectedRows } = await this.conn.execute(
      `UPDATE ${this.table} SET source_rows = ?, checksum = ?, deleting = 0, recorded_at = CURRENT_TIMESTAMP(6) WHERE migration_id = ? AND seq = ?${g.where}`,
      [span.rows, span.checksum, this.migrationId, span.seq, ...g.params],
    );
    await this.refuseIfLost(affectedRows);
  }

  /** Notes, before the source's rows of a span are deleted, that they are being deleted (see KeySpan.deleting). */
  async markDeleting(seq: number): Promise<void> {
    const g = this.guard();
    const { affectedRows } = await this.conn.execute(`UPDATE ${this.table} SET deleting = 1 WHERE migration_id = ? AND seq = ?${g.where}`, [this.migrationId, seq, ...g.params]);
    await this.refuseIfLost(affectedRows);
  }

  /** Spans numbered above `after` (from the first with null), in order, at most `limit`. */
  after(after: number | null, limit: number): Promise<KeySpan[]> {
    return this.select('seq > ?', [after ?? 0], `ORDER BY seq LIMIT ${Math.trunc(limit)}`);
  }

  /** The span numbered `seq`, if recorded. */
  async at(seq: number): Promise<KeySpan | null> {
    return (await this.select('seq = ?', [seq], ''))[0] ?? null;
  }

  /** The span that ends at `hi`, if one does. */
  async endingAt(hi: KeyValue): Promise<KeySpan | null> {
    return (await this.select('hi = ?', [hi], 'ORDER BY seq LIMIT 1'))[0] ?? null;
  }

  /** The last span: its `hi` is the highest key delivered. */
  async last(): Promise<KeySpan | null> {
    return (await this.select('TRUE', [], 'ORDER BY seq DESC LIMIT 1'))[0] ?? null;
  }

  /** Rows delivered over every span, and how many spans there are. */
  async totals(): Promise<{ rows: string; spans: string; holes: string }> {
    const rows = await this.conn.query(`SELECT COALESCE(SUM(source_rows), 0) AS n, COUNT(*) AS spans FROM ${this.table} WHERE migration_id = ?`, [this.migrationId]);
    const r = rows[0] ?? {};
    return { rows: str(r, 'n') ?? '0', spans: str(r, 'spans') ?? '0', holes: '0' };
  }
}
