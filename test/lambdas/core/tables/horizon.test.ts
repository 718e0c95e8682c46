import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Mysql2Connector } from '../../../../lambdas/adapters/mysql2.ts';
import { lowWater, type IdClock } from '../../../../lambdas/core/tables/horizon.ts';
import { admin, historyTableSql, makeDatabases, MYSQL_URL } from '../../../helpers/db.ts';

const SRC = 'courseware_studentmodulehistory';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the low water of a table, on MariaDB', () => {
  let conn: mysql.Connection;
  let dbs: Awaited<ReturnType<typeof makeDatabases>>;
  const sql = new Mysql2Connector({ FERRY_MYSQL_EDXAPP: MYSQL_URL });
  const ref = () => ({ database: dbs.names.src!, table: SRC });
  const insert = (c: mysql.Connection, state: string) => c.query(`INSERT INTO \`${dbs.names.src}\`.${SRC} (created, state, student_module_id) VALUES (NOW(6), ?, 1)`, [state]);

  beforeAll(async () => {
    conn = await admin();
    dbs = await makeDatabases(conn, 'src');
    await conn.query(historyTableSql(dbs.names.src!, SRC, 'int'));
    for (let i = 0; i < 10; i++) await insert(conn, 'early');
  });
  afterAll(async () => {
    await sql.closeAll();
    await dbs.drop();
    await conn.end();
  });

  it('never rises above an id an open transaction holds, whatever time zone the session runs in (INNODB_TRX shows the server SYSTEM zone)', async () => {
    const session = await sql.connectDedicated('edxapp');
    // a session zone five hours behind the server's: the clock must still read as trx_started does
    await session.execute("SET SESSION time_zone = '-05:00'");
    const clock: IdClock = [];
    await lowWater(session, ref(), 'id', clock);
    await sleep(1700);
    await lowWater(session, ref(), 'id', clock);
    await sleep(1100);
    const app = await admin();
    try {
      await app.query('START TRANSACTION');
      const [r] = await insert(app, 'committed late');
      const held = BigInt((r as { insertId: number }).insertId);
      await insert(conn, 'on time, above it');
      const low = await lowWater(session, ref(), 'id', clock);
      // null (not known: another file's transaction may be older than the clock) keeps every hole; a value must not pass the held id
      expect(low === null ? 'unknown' : BigInt(low) <= held ? 'at or below it' : `above it: ${low} > ${held}`).toMatch(/^(unknown|at or below it)$/);
      // run alone (vitest.config.ts), nothing else is open on the server: the answer is known
      expect(low).not.toBeNull();
      await app.query('COMMIT');
    } finally {
      await app.end();
    }
  });
});
