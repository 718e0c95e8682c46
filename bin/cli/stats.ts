import { Mysql2Connector } from '../../lambdas/adapters/mysql2.ts';
import { scalar } from '../../lambdas/adapters/sql.ts';
import { qualified } from '../../lambdas/core/identifiers.ts';
import { identityOf } from '../../lambdas/core/table-copy-input.ts';
import { CheckpointStore } from '../../lambdas/core/checkpoints.ts';
import { idBounds } from '../../lambdas/core/tables/copier.ts';
import { inspectTable } from '../../lambdas/core/tables/inspector.ts';
import { MACHINE, parseTableCopyInput, type TableCopyState } from '../../lambdas/table-copy/migration.ts';

/** Exact row counts and id bounds on both sides of a table-copy, and where its checkpoint stands. Reads only. */
export async function tableStats(raw: unknown, env: NodeJS.ProcessEnv = process.env) {
  const input = parseTableCopyInput(raw);
  const sql = new Mysql2Connector(env);
  try {
    const side = async (which: 'source' | 'target') => {
      const ref = input[which];
      const conn = await sql.connect(ref.connection);
      const info = await inspectTable(conn, ref);
      if (!info) return { table: `${ref.database}.${ref.table}`, exists: false };
      const id = info.primaryKey[0];
      return {
        table: `${ref.database}.${ref.table}`,
        exists: true,
        rows: await scalar(conn, `SELECT COUNT(*) FROM ${qualified(ref)}`),
        ...(id ? await idBounds(conn, ref, id) : {}),
      };
    };
    const target = await sql.connect(input.target.connection);
    const checkpoint = await new CheckpointStore<TableCopyState>(target, input.target.database, MACHINE).load(input.migrationId, identityOf(input));
    return {
      migrationId: input.migrationId,
      source: await side('source'),
      target: await side('target'),
      checkpoint: checkpoint && { phase: checkpoint.phase, updatedAt: checkpoint.updatedAt, copiedUpTo: checkpoint.state.copiedUpTo, rowsCopied: checkpoint.state.rowsCopied, verifiedUpTo: checkpoint.state.verifiedUpTo, rowsDeleted: checkpoint.state.rowsDeleted },
    };
  } finally {
    await sql.closeAll();
  }
}
