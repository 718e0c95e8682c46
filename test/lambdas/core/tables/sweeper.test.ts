import { RDSDataClient } from '@aws-sdk/client-rds-data';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataApiConnection } from '../../../../lambdas/adapters/data-api.ts';
import { Mysql2Connector } from '../../../../lambdas/adapters/mysql2.ts';
import { checkCanWaitForWriters, writersGone } from '../../../../lambdas/core/tables/sweeper.ts';
import { admin, historyTableSql, makeDatabases, MYSQL_URL } from '../../../helpers/db.ts';

const SRC = 'courseware_studentmodulehistory';

describe("the sweep's wait for the old table's writers, on MariaDB", () => {
  let conn: mysql.Connection;
  let dbs: Awaited<ReturnType<typeof makeDatabases>>;
  const sql = new Mysql2Connector({ FERRY_MYSQL_EDXAPP: MYSQL_URL });
  const ref = () => ({ database: dbs.names.src!, table: SRC });

  beforeAll(async () => {
    conn = await admin();
    dbs = await makeDatabases(conn, 'src');
    await conn.query(historyTableSql(dbs.names.src!, SRC, 'int'));
  });
  afterAll(async () => {
    await sql.closeAll();
    await dbs.drop();
    await conn.end();
  });

  it('is not through while a transaction that inserted a row is open, whatever its isolation, and is once it commits', async () => {
    const app = await admin();
    const session = await sql.connectDedicated('edxapp');
    try {
      await app.query('SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED');
      await app.query('START TRANSACTION');
      await app.query(`INSERT INTO \`${dbs.names.src}\`.${SRC} (created, state, student_module_id) VALUES (NOW(6), 'open', 1)`);
      expect(await writersGone(session, ref(), 1)).toBe(false);
      // the application was not held up past the lock wait: its next write goes through
      await app.query(`INSERT INTO \`${dbs.names.src}\`.${SRC} (created, state, student_module_id) VALUES (NOW(6), 'still open', 2)`);
      await app.query('COMMIT');
      expect(await writersGone(session, ref(), 1)).toBe(true);
    } finally {
      await app.end();
      await session.close();
    }
  });

  it('refuses a Data API source, naming the field and the fix, without sending a statement', async () => {
    const client = new RDSDataClient({ region: 'eu-west-1' });
    client.send = () => Promise.reject(new Error('no statement may be sent'));
    const dataApi = new DataApiConnection('edxapp', { clusterArn: 'arn:aws:rds:eu-west-1:123456789012:cluster:a', secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:a' }, client);
    await expect(checkCanWaitForWriters(async () => dataApi, ref(), 'source.connection')).rejects.toMatchObject({
      name: 'InvalidInput',
      message: expect.stringMatching(/source\.connection.*RDS Data API.*configure it as a host connection/),
    });
  });
});
