import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFerry, startFerry, tempDir, writeJson, type CliResult } from '../helpers/cli.ts';
import { admin, historyTableSql, makeDatabases, MYSQL_URL, seedHistory, tableFingerprint, urlAs } from '../helpers/db.ts';
import { startSecondServer, type SecondServer } from '../helpers/second-server.ts';
import { SRC, TGT } from '../helpers/scenario.ts';

/** Retries wait a second here (Step Functions' waits start at 2 s and double): a server restart fits in them. */
const RETRY = { FERRY_LOCAL_RETRY_MILLIS: '1000' };

/** A table-copy input from `src` on connection edxapp to `tgt` on csmh, in a new directory. */
function inputFile(src: string, tgt: string, prefix: string, rest: Record<string, unknown>): { file: string; stateDir: string } {
  const dir = tempDir();
  const file = writeJson(dir, 'input.json', {
    migrationId: `${prefix}-${src.slice(-8)}`,
    source: { connection: 'edxapp', database: src, table: SRC },
    target: { connection: 'csmh', database: tgt, table: TGT },
    idOffset: '1000',
    catchUp: { quietSeconds: 1, pollSeconds: 1 },
    ...rest,
  });
  return { file, stateDir: join(dir, 'state') };
}

describe('table-copy through faults that are not a kill', () => {
  let second: SecondServer;
  beforeAll(async () => {
    second = await startSecondServer();
  }, 60_000);
  afterAll(async () => {
    await second?.stop();
  });

  it('a server that refuses the run\'s first connection is refused at once (exit 2), naming it, nothing written, and a run once it answers goes through', async () => {
    const conn = await admin();
    const dbs = await makeDatabases(conn, 'edxapp', 'csmh');
    try {
      const [src, tgt] = [dbs.names.edxapp!, dbs.names.csmh!];
      await conn.query(historyTableSql(src, SRC, 'int'));
      await conn.query(historyTableSql(tgt, TGT, 'bigint unsigned'));
      await seedHistory(conn, src, SRC, 500);
      const { file, stateDir } = inputFile(src, tgt, 'u', { cleanup: { mode: 'none' } });
      const args = ['local', 'table-copy', '--input', file, '--state-dir', stateDir, '--approve', 'all'];
      const down = await runFerry(args, { ...RETRY, FERRY_LOCAL_RETRY_MILLIS: '50', FERRY_MYSQL_CSMH: 'mysql://root@127.0.0.1:1' });
      expect(down.code, down.stderr).toBe(2);
      expect(down.last).toMatchObject({ error: 'InvalidInput', cause: expect.stringMatching(/^target\.connection: cannot reach connection "csmh" at 127\.0\.0\.1:1 \(from FERRY_MYSQL_CSMH\): ECONNREFUSED .*Start the server, or point FERRY_MYSQL_CSMH \(or MYSQL_URL\) at the right one\.$/) });
      expect(down.stderr).not.toMatch(/retry \d of 6/);
      // a wrong password is named as such
      const denied = await runFerry(args, { FERRY_MYSQL_CSMH: MYSQL_URL.replace('mysql://root@', 'mysql://root:wrong@') });
      expect(denied.code, denied.stderr).toBe(2);
      expect(denied.last).toMatchObject({ cause: expect.stringMatching(/Access denied.*The server refused the user and password: fix them in FERRY_MYSQL_CSMH \(or MYSQL_URL\)\.$/) });
      const [tables] = await conn.query('SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?', [tgt]);
      expect((tables as { t: string }[]).map((r) => r.t)).toEqual([TGT]);
      const up = await runFerry(args, { FERRY_MYSQL_CSMH: MYSQL_URL });
      expect(up.code, up.stderr).toBe(0);
      expect(await tableFingerprint(conn, tgt, TGT)).toEqual(await tableFingerprint(conn, src, SRC));
    } finally {
      await dbs.drop();
      await conn.end();
    }
  });

  it('a live writer, connections killed on both servers, the target restarted and ferry SIGKILLed: every row ends in the target, none left behind', async () => {
    const conn = await admin();
    let target = await second.connect();
    const dbs = await makeDatabases(conn, 'edxapp');
    const src = dbs.names.edxapp!;
    const tgt = `csmh_${src.slice(-10)}`;
    const user = `ferry_f_${src.slice(-6)}`;
    let writing = true;
    let chaos = true;
    try {
      await conn.query(historyTableSql(src, SRC, 'int'));
      await conn.query(historyTableSql(src, 'reference', 'int'));
      await seedHistory(conn, src, SRC, 30000, { stateBytes: 200 });
      await conn.query(`INSERT INTO \`${src}\`.reference SELECT * FROM \`${src}\`.${SRC}`);
      await target.query(`CREATE DATABASE \`${tgt}\``);
      await target.query(historyTableSql(tgt, TGT, 'bigint unsigned'));
      // ferry runs as a user of its own on both servers, so its sessions, and only those, can be killed
      for (const c of [conn, target]) {
        await c.query(`CREATE USER '${user}'@'%' IDENTIFIED BY 'pw'`);
        await c.query(`GRANT ALL ON *.* TO '${user}'@'%'`);
      }
      const env = { ...RETRY, FERRY_MYSQL_EDXAPP: urlAs(user, 'pw'), FERRY_MYSQL_CSMH: `mysql://${user}:pw@127.0.0.1:${second.port}` };
      const { file, stateDir } = inputFile(src, tgt, 'f', {
        catchUp: { quietSeconds: 2, pollSeconds: 1 },
        chunk: { targetMillis: 20, minRows: 50, maxRows: 400 },
        throttle: { maxThreadsRunning: 200, waitSeconds: 1 },
        cleanup: { mode: 'trickle-delete', batchRows: 500 },
      });
      const args = ['local', 'table-copy', '--input', file, '--state-dir', stateDir, '--approve', 'all'];

      // the application: every row it writes to the old table also goes to `reference`, in the same transaction
      let written = 0;
      const writer = (async () => {
        const w = await admin();
        while (writing) {
          await w.query('START TRANSACTION');
          const [r] = await w.query(`INSERT INTO \`${src}\`.${SRC} (created, state, student_module_id) VALUES (NOW(6), 'live', ?)`, [written]);
          await w.query(`INSERT INTO \`${src}\`.reference SELECT * FROM \`${src}\`.${SRC} WHERE id = ?`, [(r as { insertId: number }).insertId]);
          await w.query('COMMIT');
          written++;
          await new Promise((r2) => setTimeout(r2, 20));
        }
        await w.end();
      })();

      // ferry's sessions killed on one server or the other, now and then, for the whole run
      let kills = 0;
      const killer = (async () => {
        while (chaos) {
          await new Promise((r) => setTimeout(r, 2500));
          try {
            const c = kills % 2 === 0 ? conn : target;
            const [ids] = await c.query('SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = ?', [user]);
            for (const { id } of ids as { id: number }[]) await c.query(`KILL CONNECTION ${id}`).catch(() => undefined);
            if ((ids as unknown[]).length) kills++;
          } catch {
            // the target is restarting
          }
        }
      })();

      const PHASES = ['prepare', 'copy', 'catch-up', 'verify', 'cutover-approval', 'sweep', 'cleanup-approval', 'cleanup', 'done'];
      const checkpoint = async (): Promise<{ at: number; state: Record<string, string> } | null> => {
        try {
          const [rows] = await target.query(`SELECT phase, state FROM \`${tgt}\`._ferry_checkpoints`);
          const row = (rows as { phase: string; state: string }[])[0];
          return row ? { at: PHASES.indexOf(row.phase), state: JSON.parse(row.state) } : null;
        } catch {
          return null;
        }
      };
      const past = (c: { at: number }, phase: string) => c.at > PHASES.indexOf(phase);
      const at = (c: { at: number }, phase: string) => c.at === PHASES.indexOf(phase);
      const events: { when: (c: { at: number; state: Record<string, string> }) => boolean; act: 'sigkill' | 'restart-target' | 'stop-writer' }[] = [
        { when: (c) => past(c, 'copy') || (at(c, 'copy') && BigInt(c.state.rowsCopied!) > 8000n), act: 'sigkill' },
        { when: (c) => past(c, 'copy') || (at(c, 'copy') && BigInt(c.state.rowsCopied!) > 16000n), act: 'restart-target' },
        // the application reads the copy flags and stops writing the old table: the catch-up can become quiet
        { when: (c) => past(c, 'copy'), act: 'stop-writer' },
        { when: (c) => past(c, 'cleanup') || (at(c, 'cleanup') && BigInt(c.state.rowsDeleted!) > 10000n), act: 'sigkill' },
      ];
      let result: CliResult | null = null;
      for (let runs = 0; runs < 10 && result?.code !== 0; runs++) {
        const run = startFerry(args, env);
        while (run.child.exitCode === null && events.length) {
          const c = await checkpoint();
          if (c && events[0]!.when(c)) {
            const { act } = events.shift()!;
            if (act === 'sigkill') {
              run.child.kill('SIGKILL');
              break;
            }
            if (act === 'restart-target') {
              await second.restart(1000);
              target.destroy();
              target = await second.connect();
            } else {
              writing = false;
              await writer;
            }
          }
          await new Promise((r) => setTimeout(r, 20));
        }
        result = await run.done;
        // a kill, or a restart that outlasted a task's retries (the run then fails naming the server): run again
        if (result.signal !== 'SIGKILL' && result.code !== 0) expect(result.last, result.stderr).toMatchObject({ error: 'TransientError' });
      }
      chaos = false;
      await killer;
      expect(result?.code, result?.stderr).toBe(0);
      expect(events).toEqual([]);
      expect(kills).toBeGreaterThanOrEqual(3);
      expect(written).toBeGreaterThan(20);
      const reference = await tableFingerprint(conn, src, 'reference');
      expect(reference.rows).toBe(String(30000 + written));
      expect(await tableFingerprint(target, tgt, TGT)).toEqual(reference);
      expect((await tableFingerprint(conn, src, SRC)).rows).toBe('0');
    } finally {
      writing = false;
      chaos = false;
      await conn.query(`DROP USER IF EXISTS '${user}'@'%'`).catch(() => undefined);
      await dbs.drop();
      await conn.end();
      target.destroy();
    }
  });
});
