import mysql from 'mysql2/promise';
import { redact, resolveMysqlUrl } from '../../lambdas/adapters/mysql2.ts';

/** The tests need a real MariaDB: without one they fail here, loudly, saying how to start it. */
export default async function requireMariaDb(): Promise<void> {
  const { url, from } = resolveMysqlUrl('tests');
  try {
    const conn = await mysql.createConnection({ uri: url, connectTimeout: 5000 });
    await conn.query('SELECT 1');
    await conn.end();
  } catch (err) {
    throw new Error(
      `ferry's tests need MariaDB at ${redact(url)} (from ${from}) and cannot reach it: ${(err as Error).message}\n` +
        'Start it with `bash .ci/run` (installs and starts MariaDB, then runs the tests), or by hand:\n' +
        '  mkdir -p /run/mysqld && start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd\n' +
        'or point MYSQL_URL at a server where root may create databases.',
    );
  }
}
