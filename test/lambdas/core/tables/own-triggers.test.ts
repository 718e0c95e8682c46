import { beforeAll, describe, expect, it } from 'vitest';
import { createAnchors, dropAnchors, moveOwnTriggers, ownTriggers, restoreOwnTriggers, swapKeepingTriggers } from '../../../../lambdas/core/tables/own-triggers.ts';
import type { CopyTables } from '../../../../lambdas/core/tables/copier.ts';
import { copiedColumns, hashColumns, inspectTable } from '../../../../lambdas/core/tables/inspector.ts';
import { captureNames, createTriggers, shadowNames } from '../../../../lambdas/core/tables/shadow.ts';
import { testDatabase } from '../../../helpers/test-database.ts';

/** The table's own triggers, read, made again, stood in for and put back, on MariaDB. */
describe("a table's own triggers", () => {
  const td = testDatabase('own');
  beforeAll(async () => {
    await td.conn.query(`CREATE TABLE \`${td.db}\`.t (id int PRIMARY KEY, v varchar(20)); CREATE TABLE \`${td.db}\`._t_new (id bigint PRIMARY KEY, v varchar(20)); CREATE TABLE \`${td.db}\`.audit (n int AUTO_INCREMENT PRIMARY KEY, what varchar(40))`);
    await td.conn.query("SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',PIPES_AS_CONCAT')");
    await td.conn.query(`CREATE TRIGGER \`${td.db}\`.b1 BEFORE INSERT ON \`${td.db}\`.t FOR EACH ROW SET NEW.v = 'x' || NEW.v`);
    await td.conn.query("SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, ',PIPES_AS_CONCAT', '')");
    await td.conn.query(`CREATE TRIGGER \`${td.db}\`.a2 AFTER INSERT ON \`${td.db}\`.t FOR EACH ROW INSERT INTO \`${td.db}\`.audit (what) VALUES (CONCAT('second ', NEW.id))`);
    // a body that ends in a comment
    await td.conn.query(`CREATE TRIGGER \`${td.db}\`.a1 AFTER INSERT ON \`${td.db}\`.t FOR EACH ROW PRECEDES a2 INSERT INTO \`${td.db}\`.audit (what) VALUES (CONCAT('first ', NEW.id)) -- the first`);
  });

  const t = () => ({ database: td.db, table: 't' });
  const names = async (table: string) => {
    const [rows] = await td.conn.query('SELECT TRIGGER_NAME AS n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND EVENT_OBJECT_TABLE = ? ORDER BY EVENT_MANIPULATION, ACTION_TIMING DESC, ACTION_ORDER', [td.db, table]);
    return (rows as { n: string }[]).map((r) => r.n);
  };

  it('reads them in the order they fire, without ferry’s own triggers or stand-ins', async () => {
    const c = await td.sql.connect('edxapp');
    await createTriggers(c, 'm1', t(), { columns: ['id'], sameRow: ['PRIMARY'] }, { source: ['id', 'v'], target: ['id', 'v'] }, { seconds: 2, attempts: 1 });
    const before = await ownTriggers(c, t());
    await createAnchors(c, 'm1', t(), before);
    const own = await ownTriggers(c, t());
    expect(own.map((tr) => `${tr.name} ${tr.timing} ${tr.event} ${tr.order}`)).toEqual(['b1 BEFORE INSERT 1', 'a1 AFTER INSERT 1', 'a2 AFTER INSERT 2']);
    expect(own.find((tr) => tr.name === 'b1')!.sqlMode).toContain('PIPES_AS_CONCAT');
    // ferry's triggers and the stand-ins are on the table, and fire nothing of the application's twice
    const all = await names('t');
    expect(all.filter((n) => n.startsWith('_ferry_')).length).toBe(6);
    await td.conn.query(`INSERT INTO \`${td.db}\`.t VALUES (1, 'a')`);
    const [audit] = await td.conn.query(`SELECT what FROM \`${td.db}\`.audit ORDER BY n`);
    expect((audit as { what: string }[]).map((r) => r.what)).toEqual(['first 1', 'second 1']);
    const [row] = await td.conn.query(`SELECT v FROM \`${td.db}\`._t_new WHERE id = 1`);
    expect((row as { v: string }[])[0]!.v).toBe('xa');
    await dropAnchors(c, 'm1', t());
    for (const name of Object.values(captureNames('m1', t())).filter((n) => typeof n === 'string')) await td.conn.query(`DROP TRIGGER IF EXISTS \`${td.db}\`.\`${name}\``);
    expect(await names('t')).toEqual(['b1', 'a1', 'a2']);
  });

  it('puts them back on the table, in order and with their SQL mode, when a stopped swap left them on the shadow', async () => {
    const c = await td.sql.connect('edxapp');
    const own = await ownTriggers(c, t());
    // a swap stopped after the move, before the RENAME
    await moveOwnTriggers(c, own, t(), shadowNames(t()).shadow);
    expect(await names('t')).toEqual([]);
    expect(await names('_t_new')).toEqual(['b1', 'a1', 'a2']);
    expect(await restoreOwnTriggers(c, t(), own)).toEqual(['b1', 'a1', 'a2']);
    expect(await names('t')).toEqual(['b1', 'a1', 'a2']);
    expect(await names('_t_new')).toEqual([]);
    expect(await restoreOwnTriggers(c, t(), own)).toEqual([]);
    await td.conn.query(`INSERT INTO \`${td.db}\`.t VALUES (2, 'b')`);
    const [audit] = await td.conn.query(`SELECT what FROM \`${td.db}\`.audit ORDER BY n`);
    expect((audit as { what: string }[]).map((r) => r.what).slice(-2)).toEqual(['first 2', 'second 2']);
    const [row] = await td.conn.query(`SELECT v FROM \`${td.db}\`.t WHERE id = 2`);
    expect((row as { v: string }[])[0]!.v).toBe('xb');
  });

  it('swaps with them: a write logged since the last look reaches the altered table before the triggers do, and fires nothing twice', async () => {
    const c = await td.sql.connect('edxapp');
    const own = await ownTriggers(c, t());
    const log = captureNames('m2', t()).log;
    // the shadow lacks row 3, which the application wrote (its triggers fired) and ferry's trigger could not carry: it is logged
    await td.conn.query(`INSERT INTO \`${td.db}\`.t VALUES (3, 'c')`);
    await td.conn.query(`CREATE TABLE \`${td.db}\`.\`${log.table}\` (seq BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, row_id DECIMAL(20,0) NOT NULL, event VARCHAR(8) NOT NULL, message VARCHAR(512) NULL, at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))`);
    await td.conn.query(`INSERT INTO \`${td.db}\`.\`${log.table}\` (row_id, event, message) VALUES (3, 'insert', 'not written')`);
    await td.conn.query(`INSERT IGNORE INTO \`${td.db}\`._t_new SELECT * FROM \`${td.db}\`.t WHERE id <> 3`);
    const [auditBefore] = await td.conn.query(`SELECT COUNT(*) AS n FROM \`${td.db}\`.audit`);
    const info = (await inspectTable(c, t()))!;
    const columns = copiedColumns(info);
    const tables: CopyTables = {
      source: c,
      target: c,
      sourceTable: t(),
      targetTable: shadowNames(t()).shadow,
      idColumn: 'id',
      keyIndex: 'PRIMARY',
      columns,
      targetColumns: columns,
      hash: { source: hashColumns(info, columns), target: hashColumns(info, columns) },
    };
    const renamer = await td.sql.connectDedicated('edxapp');
    try {
      await swapKeepingTriggers(c, renamer, tables, 'm2', 'MODIFY id bigint', own, 2);
    } finally {
      await renamer.close();
    }
    expect(await names('t')).toEqual(['b1', 'a1', 'a2']);
    expect(await names('_t_old')).toEqual([]);
    const [rows] = await td.conn.query(`SELECT id, v FROM \`${td.db}\`.t ORDER BY id`);
    expect(rows).toEqual([{ id: '1', v: 'xa' }, { id: '2', v: 'xb' }, { id: '3', v: 'xc' }]);
    const [auditAfter] = await td.conn.query(`SELECT COUNT(*) AS n FROM \`${td.db}\`.audit`);
    expect(Number((auditAfter as { n: string }[])[0]!.n)).toBe(Number((auditBefore as { n: string }[])[0]!.n));
    const [left] = await td.conn.query(`SELECT COUNT(*) AS n FROM \`${td.db}\`.\`${log.table}\``);
    expect(Number((left as { n: string }[])[0]!.n)).toBe(0);
  });
});
