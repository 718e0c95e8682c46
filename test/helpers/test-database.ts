import { afterAll, beforeAll } from 'vitest';
import type mysql from 'mysql2/promise';
import { Mysql2Connector } from '../../lambdas/adapters/mysql2.ts';
import { admin, makeDatabases, MYSQL_URL } from './db.ts';

export interface TestDatabase {
  /** The admin connection (multiple statements, ids as strings). */
  readonly conn: mysql.Connection;
  /** The database's name. */
  readonly db: string;
  /** ferry's connector, its `edxapp` connection on the test server. */
  readonly sql: Mysql2Connector;
}

/** A database of its own for a test file: made before its tests, dropped after them with every connection closed. */
export function testDatabase(role: string): TestDatabase {
  const sql = new Mysql2Connector({ FERRY_MYSQL_EDXAPP: MYSQL_URL });
  let conn: mysql.Connection | undefined;
  let dbs: Awaited<ReturnType<typeof makeDatabases>> | undefined;
  beforeAll(async () => {
    conn = await admin();
    dbs = await makeDatabases(conn, role);
  });
  afterAll(async () => {
    await sql.closeAll();
    await dbs?.drop();
    await conn?.end();
  });
  return {
    get conn() {
      return conn!;
    },
    get db() {
      return dbs!.names[role]!;
    },
    sql,
  };
}
