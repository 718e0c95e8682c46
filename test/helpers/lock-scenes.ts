import mysql from 'mysql2/promise';
import type { CopyTables } from '../../lambdas/core/tables/copier.ts';
import { copiedColumns, hashColumns, inspectTable } from '../../lambdas/core/tables/inspector.ts';
import { MYSQL_URL } from './db.ts';
import type { TestDatabase } from './test-database.ts';

/** Two tables of a test database as ferry copies between them on one server (`from` keyed by `id`), the same columns on both sides. */
export async function localCopyTables(td: TestDatabase, from: string, to: string, extra: Partial<CopyTables> = {}): Promise<CopyTables> {
  const source = await td.sql.connect('edxapp');
  const info = (await inspectTable(source, { database: td.db, table: from }))!;
  const columns = copiedColumns(info);
  return {
    source,
    target: source,
    sourceTable: { database: td.db, table: from },
    targetTable: { database: td.db, table: to },
    idColumn: 'id',
    keyIndex: 'PRIMARY',
    targetKeyIndex: 'PRIMARY',
    columns,
    targetColumns: columns,
    hash: { source: hashColumns(info, columns), target: hashColumns(info, columns) },
    ...extra,
  };
}

/**
 * An application transaction beside ferry: it sends `first`, then ferry starts `work`, and 300 ms
 * later (ferry waiting on the application's locks by then, if it waits at all) the application
 * sends `next` and commits. Returns `next`'s error (message and errno) or null, and what `work`
 * gave, or its error's message.
 */
export async function besideApplication<T>(first: readonly string[], work: () => Promise<T>, next: string): Promise<{ app: string | null; ferry: T | { error: string } }> {
  const app = await mysql.createConnection({ uri: MYSQL_URL });
  try {
    await app.query('BEGIN');
    for (const sql of first) await app.query(sql);
    const running = work().then((v) => v, (err: Error) => ({ error: err.message }));
    await new Promise((r) => setTimeout(r, 300));
    const failed = await app.query(next).then(
      () => null,
      (err: { errno?: number; message: string }) => `${err.message} (${err.errno})`,
    );
    await app.query('COMMIT').catch(() => undefined);
    return { app: failed, ferry: await running };
  } finally {
    await app.end();
  }
}
