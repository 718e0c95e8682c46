import { describe, expect, it } from 'vitest';
import mysql from 'mysql2/promise';
import { captureNames, createShadow } from '../../../../lambdas/core/tables/shadow.ts';
import { MYSQL_URL } from '../../../helpers/db.ts';
import { testDatabase } from '../../../helpers/test-database.ts';

/**
 * ferry's capture triggers carry every write into the shadow whatever the application's session
 * did just before: a first statement after BEGIN, or one after an UPDATE or DELETE that matched
 * nothing (MariaDB's ROW_COUNT inside the trigger is then the previous statement's, 0).
 */
describe('capture triggers', () => {
  const td = testDatabase('cap');

  it('write the row after a statement that changed nothing, and log nothing', async () => {
    const { db } = td;
    await td.conn.query(`CREATE TABLE \`${db}\`.t (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, v int NULL)`);
    const c = await td.sql.connect('edxapp');
    const t = { database: db, table: 't' };
    await createShadow(c, 'cap', t, 'MODIFY id bigint NOT NULL AUTO_INCREMENT', 'id', { seconds: 2, attempts: 1 });
    const app = await mysql.createConnection({ uri: MYSQL_URL });
    try {
      await app.query(`UPDATE \`${db}\`.t SET v = 1 WHERE id = 12345`);
      await app.query(`INSERT INTO \`${db}\`.t VALUES (1, 1)`);
      await app.query(`DELETE FROM \`${db}\`.t WHERE id = 777`);
      await app.query(`INSERT INTO \`${db}\`.t VALUES (2, 2)`);
      await app.query('BEGIN');
      await app.query(`INSERT INTO \`${db}\`.t VALUES (3, 3)`);
      await app.query(`UPDATE \`${db}\`.t SET v = 30 WHERE id = 3`);
      await app.query('COMMIT');
      await app.query('BEGIN');
      await app.query(`UPDATE \`${db}\`.t SET v = 20 WHERE id = 2`);
      await app.query('COMMIT');
    } finally {
      await app.end();
    }
    const [shadow] = await td.conn.query(`SELECT id, v FROM \`${db}\`._t_new ORDER BY id`);
    expect(shadow).toEqual([{ id: '1', v: 1 }, { id: '2', v: 20 }, { id: '3', v: 30 }]);
    const [logged] = await td.conn.query(`SELECT row_id, event, message FROM \`${db}\`.\`${captureNames('cap', t).log.table}\``);
    expect(logged).toEqual([]);
  });

  it.each([
    ['one integer column named i', 'i int NOT NULL PRIMARY KEY, n int NOT NULL', ['i']],
    ['two columns named n and i', 'n int NOT NULL, i int NOT NULL, PRIMARY KEY (n, i)', ['n', 'i']],
  ])('carry updates and deletes of a table keyed by %s, names the triggers also give their own variables', async (_, columns, key) => {
    const { db } = td;
    const name = `k${key.length}`;
    await td.conn.query(`CREATE TABLE \`${db}\`.${name} (${columns}, v int NULL); INSERT INTO \`${db}\`.${name} (n, i, v) VALUES (1, 1, 1), (2, 2, 2), (3, 3, 3)`);
    const c = await td.sql.connect('edxapp');
    const t = { database: db, table: name };
    await createShadow(c, `cap${name}`, t, 'ADD COLUMN w int NULL', key, { seconds: 2, attempts: 1 });
    await td.conn.query(`INSERT INTO \`${db}\`._${name}_new (n, i, v) SELECT n, i, v FROM \`${db}\`.${name}`);
    await td.conn.query(`UPDATE \`${db}\`.${name} SET v = 10 WHERE i = 1`);
    await td.conn.query(`DELETE FROM \`${db}\`.${name} WHERE i = 2`);
    const [shadow] = await td.conn.query(`SELECT n, i, v FROM \`${db}\`._${name}_new ORDER BY i`);
    expect(shadow).toEqual([{ n: 1, i: 1, v: 10 }, { n: 3, i: 3, v: 3 }]);
    const [logged] = await td.conn.query(`SELECT * FROM \`${db}\`.\`${captureNames(`cap${name}`, t).log.table}\``);
    expect(logged).toEqual([]);
  });

  it('never write a key the altered column cannot hold, which it would store as another (a negative id in a bigint unsigned is 0): the write is logged', async () => {
    const { db } = td;
    await td.conn.query(`CREATE TABLE \`${db}\`.neg (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, v int NULL); INSERT INTO \`${db}\`.neg VALUES (1, 1), (2, 2), (3, 3)`);
    const c = await td.sql.connect('edxapp');
    const t = { database: db, table: 'neg' };
    await createShadow(c, 'capneg', t, 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT', 'id', { seconds: 2, attempts: 1 });
    await td.conn.query(`INSERT INTO \`${db}\`._neg_new SELECT * FROM \`${db}\`.neg`);
    const app = await mysql.createConnection({ uri: MYSQL_URL });
    try {
      await app.query(`INSERT INTO \`${db}\`.neg VALUES (-5, 5)`);
      await app.query(`UPDATE \`${db}\`.neg SET v = 50 WHERE id = -5`);
      await app.query(`DELETE FROM \`${db}\`.neg WHERE id = -5`);
      await app.query(`UPDATE \`${db}\`.neg SET id = -3 WHERE id = 3`);
      await app.query(`UPDATE \`${db}\`.neg SET id = 4 WHERE id = -3`);
    } finally {
      await app.end();
    }
    // the table's rows, and no row at 0 (nor 4294967295) that no one wrote
    const [shadow] = await td.conn.query(`SELECT id, v FROM \`${db}\`._neg_new ORDER BY id`);
    expect(shadow).toEqual([{ id: '1', v: 1 }, { id: '2', v: 2 }, { id: '4', v: 3 }]);
    const [logged] = await td.conn.query(`SELECT row_id, event, message FROM \`${db}\`.\`${captureNames('capneg', t).log.table}\` ORDER BY seq`);
    expect((logged as { row_id: string; event: string; message: string }[]).map((r) => [r.row_id, r.event])).toEqual([['-5', 'insert'], ['-5', 'update'], ['-3', 'update']]);
    expect((logged as { message: string }[])[0]!.message).toMatch(/cannot hold/);
  });

  it('on a table keyed by a unique key, update a row the shadow has in place, and log only a clash on another key', async () => {
    const { db } = td;
    await td.conn.query(`CREATE TABLE \`${db}\`.u (id int NOT NULL AUTO_INCREMENT, v int NULL, w int NULL, UNIQUE KEY row_id (id)); INSERT INTO \`${db}\`.u VALUES (1, 1, 1), (2, 2, 2)`);
    const c = await td.sql.connect('edxapp');
    const t = { database: db, table: 'u' };
    await createShadow(c, 'capuk', t, 'ADD UNIQUE KEY w_u (w)', 'id', { seconds: 2, attempts: 1 });
    await td.conn.query(`INSERT INTO \`${db}\`._u_new SELECT * FROM \`${db}\`.u`);
    const app = await mysql.createConnection({ uri: MYSQL_URL });
    try {
      await app.query(`UPDATE \`${db}\`.u SET v = 10 WHERE id = 1`);
      await app.query(`INSERT INTO \`${db}\`.u VALUES (3, 3, 2)`);
    } finally {
      await app.end();
    }
    const [shadow] = await td.conn.query(`SELECT id, v, w FROM \`${db}\`._u_new ORDER BY id`);
    expect(shadow).toEqual([{ id: 1, v: 10, w: 1 }, { id: 2, v: 2, w: 2 }]);
    const [logged] = await td.conn.query(`SELECT row_id, event, message FROM \`${db}\`.\`${captureNames('capuk', t).log.table}\``);
    expect(logged).toEqual([{ row_id: '3', event: 'insert', message: expect.stringMatching(/Duplicate entry '2' for key 'w_u'/) }]);
  });

  it('take a duplicate on a key the table enforces too for the row itself: an update of a copied row is made in place, not logged', async () => {
    const { db } = td;
    await td.conn.query(`CREATE TABLE \`${db}\`.s (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, a int NOT NULL, b int NOT NULL, v int NULL, UNIQUE KEY ab (a, b)); INSERT INTO \`${db}\`.s VALUES (1, 1, 1, 1), (2, 2, 2, 2)`);
    const c = await td.sql.connect('edxapp');
    const t = { database: db, table: 's' };
    // the primary key moves to (a, b): a row written again meets itself there first, before the unique key on id
    await createShadow(c, 'capab', t, 'DROP PRIMARY KEY, DROP KEY ab, ADD PRIMARY KEY (a, b), ADD UNIQUE KEY row_id (id)', 'id', { seconds: 2, attempts: 1 });
    await td.conn.query(`INSERT INTO \`${db}\`._s_new SELECT * FROM \`${db}\`.s`);
    await td.conn.query(`UPDATE \`${db}\`.s SET v = 10 WHERE id = 1; UPDATE \`${db}\`.s SET a = 5 WHERE id = 2`);
    const [shadow] = await td.conn.query(`SELECT id, a, b, v FROM \`${db}\`._s_new ORDER BY id`);
    expect(shadow).toEqual([{ id: 1, a: 1, b: 1, v: 10 }, { id: 2, a: 5, b: 2, v: 2 }]);
    const [logged] = await td.conn.query(`SELECT row_id FROM \`${db}\`.\`${captureNames('capab', t).log.table}\``);
    expect(logged).toEqual([]);
  });

  it('log a clash on a key the altered table enforces and the table does not (another collation), even as the primary key moves', async () => {
    const { db } = td;
    await td.conn.query(`CREATE TABLE \`${db}\`.e (id int NOT NULL PRIMARY KEY, a int NOT NULL, b int NOT NULL, email varchar(10) COLLATE utf8mb4_bin NOT NULL, UNIQUE KEY ab (a, b), UNIQUE KEY em (email));
      INSERT INTO \`${db}\`.e VALUES (1, 1, 1, 'e5'), (2, 2, 2, 'x')`);
    const c = await td.sql.connect('edxapp');
    const t = { database: db, table: 'e' };
    await createShadow(c, 'capem', t, 'DROP PRIMARY KEY, DROP KEY ab, ADD PRIMARY KEY (a, b), ADD UNIQUE KEY row_id (id), MODIFY email varchar(10) COLLATE utf8mb4_general_ci NOT NULL', 'id', { seconds: 2, attempts: 1 });
    // the copy has reached row 1 only
    await td.conn.query(`INSERT INTO \`${db}\`._e_new SELECT * FROM \`${db}\`.e WHERE id = 1`);
    await td.conn.query(`UPDATE \`${db}\`.e SET email = 'E5' WHERE id = 2`);
    const [shadow] = await td.conn.query(`SELECT id FROM \`${db}\`._e_new ORDER BY id`);
    expect(shadow).toEqual([{ id: 1 }]);
    const [logged] = await td.conn.query(`SELECT row_id, event, message FROM \`${db}\`.\`${captureNames('capem', t).log.table}\``);
    expect(logged).toEqual([{ row_id: '2', event: 'update', message: expect.stringMatching(/Duplicate entry 'E5' for key 'em'/) }]);
  });
});
