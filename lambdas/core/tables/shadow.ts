import { createHash } from 'node:crypto';
import { qualified, quoteIdent, type TableRef } from '../identifiers.ts';

/** The names ferry gives the altered copy and, after the swap, the original. */
export function shadowNames(t: TableRef): { shadow: TableRef; old: TableRef } {
  return { shadow: { database: t.database, table: `_${t.table}_new` }, old: { database: t.database, table: `_${t.table}_old` } };
}

/** Trigger names: fixed length whatever the table's, and recognisably ferry's. */
export function triggerNames(migrationId: string, t: TableRef): { insert: string; update: string; delete: string } {
  const tag = createHash('sha1').update(`${migrationId}\0${t.database}\0${t.table}`).digest('hex').slice(0, 12);
  return { insert: `_ferry_${tag}_ins`, update: `_ferry_${tag}_upd`, delete: `_ferry_${tag}_del` };
}

export const FERRY_TRIGGER = /^_ferry_[0-9a-f]{12}_(ins|upd|del)$/;

/**
 * Change capture into the shadow: every write to the table is replayed on the shadow in the same
 * transaction. REPLACE makes the shadow row equal the table's, whatever the copy did before; an
 * update that changes the key first removes the row under the old key.
 */
export function triggerSql(migrationId: string, t: TableRef, shadow: TableRef, idColumn: string, columns: readonly string[]): string[] {
  const names = triggerNames(migrationId, t);
  const cols = columns.map(quoteIdent).join(', ');
  const values = (row: 'NEW' | 'OLD') => columns.map((c) => `${row}.${quoteIdent(c)}`).join(', ');
  const id = quoteIdent(idColumn);
  const table = qualified(t);
  const sh = qualified(shadow);
  return [
    `CREATE TRIGGER ${qualified({ database: t.database, table: names.insert })} AFTER INSERT ON ${table} FOR EACH ROW REPLACE INTO ${sh} (${cols}) VALUES (${values('NEW')})`,
    `CREATE TRIGGER ${qualified({ database: t.database, table: names.update })} AFTER UPDATE ON ${table} FOR EACH ROW BEGIN ` +
      `DELETE IGNORE FROM ${sh} WHERE NOT (OLD.${id} <=> NEW.${id}) AND ${id} <=> OLD.${id}; ` +
      `REPLACE INTO ${sh} (${cols}) VALUES (${values('NEW')}); END`,
    `CREATE TRIGGER ${qualified({ database: t.database, table: names.delete })} AFTER DELETE ON ${table} FOR EACH ROW DELETE IGNORE FROM ${sh} WHERE ${id} <=> OLD.${id}`,
  ];
}

export function dropTriggerSql(migrationId: string, t: TableRef): string[] {
  const names = triggerNames(migrationId, t);
  return [names.insert, names.update, names.delete].map((n) => `DROP TRIGGER IF EXISTS ${qualified({ database: t.database, table: n })}`);
}
