import { oldDatabaseLag } from '../../lambdas/doctype-copy/revert.ts';
import { NanoConnector } from '../../lambdas/adapters/couch.ts';
import { Mysql2Connector } from '../../lambdas/adapters/mysql2.ts';
import { DocCheckpointStore } from '../../lambdas/core/docs/checkpoint.ts';
import { compareCounts, formatCounts, wantedDocTypes } from '../../lambdas/core/docs/doc-types.ts';
import { docTypeIndex, hasFerryView } from '../../lambdas/core/docs/doc-type-index.ts';
import { doctypeIdentityOf } from '../../lambdas/core/doctype-copy-input.ts';
import { MACHINE as DOC_MACHINE, parseDoctypeCopyInput, sourceIndex, type DoctypeCopyState } from '../../lambdas/doctype-copy/open-doc-migration.ts';
import type { SqlConnection } from '../../lambdas/core/ports/sql.ts';
import type { TableRef } from '../../lambdas/core/identifiers.ts';
import { countRows } from '../../lambdas/core/tables/table-writes.ts';
import { identityOf } from '../../lambdas/core/table-copy-input.ts';
import { CheckpointStore } from '../../lambdas/core/checkpoints.ts';
import { idBounds } from '../../lambdas/core/tables/copier.ts';
import { copyKeyShape, inspectTable, integerKeys } from '../../lambdas/core/tables/inspector.ts';
import { copyKeyOf } from '../../lambdas/core/tables/chunked-copy.ts';
import { oldTableLagOf } from '../../lambdas/core/tables/carry-back.ts';
import type { TableCopyInput } from '../../lambdas/core/table-copy-input.ts';
import { rowsOf } from '../../lambdas/core/tables/plan-reads.ts';
import { MACHINE, parseTableCopyInput, type TableCopyState } from '../../lambdas/table-copy/open-migration.ts';
import { alterIdentityOf } from '../../lambdas/core/online-alter-input.ts';
import { captureOn, shadowNames } from '../../lambdas/core/tables/shadow.ts';
import { windowInWords, windowLag, windowOpen } from '../../lambdas/core/tables/revert-window.ts';
import { MACHINE as ALTER_MACHINE, parseOnlineAlterInput, type OnlineAlterState } from '../../lambdas/online-alter/open-alter.ts';

/**
 * How tables are counted: `exact` (COUNT(*), what `ferry stats` promises), `bounded` (exact up to
 * 1,000,000 rows by the server's estimate, the estimate above: a page refreshed often never scans a
 * huge live table), or `none` (the checkpoint alone).
 */
export type Counting = 'exact' | 'bounded' | 'none';

/** A table's row count, id bounds and id type, or that it does not exist. */
async function describeTable(conn: SqlConnection, ref: TableRef, counting: Counting = 'exact') {
  if (counting === 'none') return { table: `${ref.database}.${ref.table}`, exists: true };
  const info = await inspectTable(conn, ref);
  if (!info) return { table: `${ref.database}.${ref.table}`, exists: false };
  const id = integerKeys(info)[0]?.column;
  const counted = counting === 'exact' ? { rows: await countRows(conn, ref), exact: true } : await rowsOf(conn, ref);
  return {
    table: `${ref.database}.${ref.table}`,
    exists: true,
    idType: info.columns.find((c) => c.name === id)?.columnType ?? null,
    rows: counted.rows,
    ...(counted.exact ? {} : { estimated: true }),
    ...(id ? await idBounds(conn, ref, id) : {}),
  };
}

/** Phases of a table-copy in which a revert is possible or under way: the old table's lag is shown. */
const REVERTIBLE = new Set(['cleanup-approval', 'revert']);

/** How far a table-copy's old table trails the new one (see oldTableLag). */
async function lagOf(target: SqlConnection, input: TableCopyInput, state: TableCopyState): Promise<string | null> {
  const info = await inspectTable(target, input.target);
  return info ? oldTableLagOf(target, input, copyKeyShape(info, copyKeyOf(state, info))) : null;
}

/** Exact row counts and id bounds on both sides of a table-copy, and where its checkpoint stands. Reads only. */
export async function tableStats(raw: unknown, env: NodeJS.ProcessEnv = process.env, counting: Counting = 'exact') {
  const input = parseTableCopyInput(raw);
  const sql = new Mysql2Connector(env);
  try {
    const side = async (which: 'source' | 'target') => describeTable(await sql.connect(input[which].connection), input[which], counting);
    const target = await sql.connect(input.target.connection);
    const checkpoint = await new CheckpointStore<TableCopyState>(target, input.target.database, MACHINE).load(input.migrationId, identityOf(input));
    return {
      migrationId: input.migrationId,
      source: await side('source'),
      target: await side('target'),
      ...(checkpoint && REVERTIBLE.has(checkpoint.phase) ? { oldTable: await lagOf(target, input, checkpoint.state) } : {}),
      checkpoint: checkpoint && {
        phase: checkpoint.phase, updatedAt: checkpoint.updatedAt, copiedUpTo: checkpoint.state.copiedUpTo, rowsCopied: checkpoint.state.rowsCopied, estimatedRows: checkpoint.state.estimatedRows,
        verifiedUpTo: checkpoint.state.verifiedUpTo, rangesVerified: checkpoint.state.rangesVerified, rowsVerified: checkpoint.state.rowsVerified, rangesRepaired: checkpoint.state.rangesRepaired,
        reverify: checkpoint.state.reverify ?? null, rowsDeleted: checkpoint.state.rowsDeleted, throttledMillis: checkpoint.state.throttledMillis,
      },
    };
  } finally {
    await sql.closeAll();
  }
}

/**
 * Per doc type (and -Deleted twin), live docs in source and target, like the original `--stats`.
 * The source is counted as the migration reads it (the view the input names, ferry's own when
 * allowed, or a scan); the target by ferry's view when it has one, else by a scan. Stats never write.
 */
export async function docStats(raw: unknown, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const input = parseDoctypeCopyInput(raw);
  const couch = new NanoConnector(env);
  const wanted = wantedDocTypes(input.docTypes);
  const count = async (which: 'source' | 'target') => {
    const db = await couch.database(input[which].connection, input[which].database);
    if (!(await db.info())) return { counts: {}, missing: true, db };
    const index = which === 'source' ? sourceIndex(input, db, wanted) : docTypeIndex(db, wanted, { ferryView: await hasFerryView(db) });
    return { counts: await index.counts(), missing: false, db };
  };
  const [source, target] = await Promise.all([count('source'), count('target')]);
  const lines = [`${input.migrationId}: ${input.source.database} → ${input.target.database}`, formatCounts(compareCounts(wanted, source.counts, target.counts))];
  if (source.missing) lines.push(`source database ${input.source.database} does not exist`);
  if (target.missing) lines.push(`target database ${input.target.database} does not exist`);
  else {
    const cp = await new DocCheckpointStore<DoctypeCopyState>(target.db, input.migrationId, DOC_MACHINE).load(input.migrationId, doctypeIdentityOf(input));
    lines.push(cp ? `checkpoint: phase ${cp.phase}, ${cp.state.docsCopied} docs copied, top-off at seq ${cp.state.topOffSeq}, ${cp.state.docsDeleted} deleted` : 'checkpoint: none');
    // How far the old database lags while a revert is still possible: what the new one took since the cut-over.
    if (cp?.phase === 'cleanup-approval' && cp.state.targetSeqAtCutover !== undefined) {
      const lag = oldDatabaseLag(input, cp.state.targetSeqAtCutover, (await target.db.info())?.updateSeq);
      if (lag) lines.push(lag);
    }
    const both = cp?.state.editedInBoth ?? [];
    if (both.length) {
      lines.push(`edited in both after the cut-over (the target keeps the application's edit; the source's is ${cp!.phase === 'done' ? 'left in the source' : 'not carried over'}):`);
      for (const d of both) lines.push(`  ${d.id}  target ${d.targetRev}  source ${d.sourceRev}`);
      if ((cp!.state.editedInBothCount ?? 0) > both.length) lines.push(`  … and ${cp!.state.editedInBothCount! - both.length} more`);
    }
  }
  return lines.join('\n');
}

/** Rows and id bounds of an online-alter's table and its shadow, and where its checkpoint stands. Reads only. */
export async function alterStats(raw: unknown, env: NodeJS.ProcessEnv = process.env, counting: Counting = 'exact') {
  const input = parseOnlineAlterInput(raw);
  const sql = new Mysql2Connector(env);
  try {
    const conn = await sql.connect(input.table.connection);
    const side = (ref: TableRef) => describeTable(conn, ref, counting);
    const { shadow, old } = shadowNames(input.table);
    const checkpoint = await new CheckpointStore<OnlineAlterState>(conn, input.table.database, ALTER_MACHINE).load(input.migrationId, alterIdentityOf(input));
    return {
      migrationId: input.migrationId,
      table: await side(input.table),
      shadow: await side(shadow),
      old: await side(old),
      checkpoint: checkpoint && {
        phase: checkpoint.phase, updatedAt: checkpoint.updatedAt, copiedUpTo: checkpoint.state.copiedUpTo, rowsCopied: checkpoint.state.rowsCopied, estimatedRows: checkpoint.state.estimatedRows,
        verifiedUpTo: checkpoint.state.verifiedUpTo, rangesVerified: checkpoint.state.rangesVerified, rowsVerified: checkpoint.state.rowsVerified, rangesRepaired: checkpoint.state.rangesRepaired, swappedAt: checkpoint.state.swappedAt,
        reverify: checkpoint.state.reverify ?? null,
      },
      revertWindow: (await windowOpen(conn, input.migrationId, input.table)) ? { open: true, ...(await windowLag(conn, input.migrationId, input.table)) } : { open: false },
    };
  } finally {
    await sql.closeAll();
  }
}

/** ferry's triggers on an online-alter's live table now, in words ("triggers on … since …"), or null when there are none. */
export async function triggersHeld(raw: unknown, env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  const input = parseOnlineAlterInput(raw);
  const sql = new Mysql2Connector(env);
  try {
    const conn = await sql.connect(input.table.connection);
    const window = await windowInWords(conn, input.migrationId, input.table);
    if (window) return window;
    const { triggers, since } = await captureOn(conn, input.table);
    return triggers.length ? `triggers on ${input.table.database}.${input.table.table} since ${since}: every insert, update and delete there also writes ${shadowNames(input.table).shadow.table} (ferry abandon ${input.migrationId} takes them back)` : null;
  } finally {
    await sql.closeAll();
  }
}
