import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { Mysql2Connector } from '../../../../lambdas/adapters/mysql2.ts';
import { copyRange, idBounds, nextExistingId, sameServer, type CopyTables } from '../../../../lambdas/core/tables/copier.ts';
import { copiedColumns, hashColumns, inspectTable } from '../../../../lambdas/core/tables/inspector.ts';
import { verifyRange } from '../../../../lambdas/core/tables/verifier.ts';
import { scalar, type SqlConnection } from '../../../../lambdas/core/ports/sql.ts';
import { loadCharset as loadDataCharset } from '../../../../lambdas/core/tables/load-data.ts';
import { admin, historyTableSql, makeDatabases, MYSQL_URL, OTHER_HOST_URL, seedHistory, tableFingerprint } from '../../../helpers/db.ts';

const SRC = 'courseware_studentmodulehistory';
const TGT = 'coursewarehistoryextended_studentmodulehistoryextended';

describe('copier and verifier on MariaDB', () => {
  let conn: mysql.Connection;
  let dbs: Awaited<ReturnType<typeof makeDatabases>>;
  // `edxapp` and `csmh` reach the same server under two host names, so ferry streams rows between them.
  const sql = new Mysql2Connector({ FERRY_MYSQL_EDXAPP: MYSQL_URL, FERRY_MYSQL_CSMH: OTHER_HOST_URL });

  beforeAll(async () => {
    conn = await admin();
    dbs = await makeDatabases(conn, 'src', 'tgt');
    await conn.query(historyTableSql(dbs.names.src!, SRC, 'int'));
    await seedHistory(conn, dbs.names.src!, SRC, 3000, { first: 10n, step: 3n });
  });
  afterAll(async () => {
    await sql.closeAll();
    await dbs.drop();
    await conn.end();
  });

  async function tables(targetTable: string, targetConnection: 'edxapp' | 'csmh'): Promise<CopyTables> {
    const source = await sql.connect('edxapp');
    const target = await sql.connect(targetConnection);
    const info = (await inspectTable(source, { database: dbs.names.src!, table: SRC }))!;
    return {
      source,
      target,
      sourceTable: { database: dbs.names.src!, table: SRC },
      targetTable: { database: dbs.names.tgt!, table: targetTable },
      idColumn: 'id', keyIndex: 'PRIMARY',
      columns: copiedColumns(info),
      targetColumns: copiedColumns(info),
      hash: { source: hashColumns(info, copiedColumns(info)), target: hashColumns(info, copiedColumns(info)) },
    };
  }

  for (const [label, connection] of [['one server: INSERT … SELECT', 'edxapp'], ['two servers: streamed batches', 'csmh']] as const) {
    it(`${label}: copies ranges exactly and idempotently`, async () => {
      const table = `${TGT}_${connection}`;
      await conn.query(historyTableSql(dbs.names.tgt!, table, 'bigint unsigned'));
      const t = await tables(table, connection);
      expect(sameServer(t)).toBe(connection === 'edxapp');
      const first = await copyRange(t, { lo: '0', hi: '4999' });
      const second = await copyRange(t, { lo: '5000', hi: '99999' });
      expect(first.inserted + second.inserted).toBe(3000);
      // a chunk copied again (after a crash or a retry) changes nothing
      expect((await copyRange(t, { lo: '0', hi: '99999' })).inserted).toBe(0);
      const a = await tableFingerprint(conn, dbs.names.src!, SRC);
      const b = await tableFingerprint(conn, dbs.names.tgt!, table);
      expect(b).toEqual(a);
      expect(await verifyRange(t, { lo: '0', hi: '99999' })).toMatchObject({ rows: '3000', repaired: false });
    });
  }

  it('two servers: rows stream into LOAD DATA with every value exact, and go in as INSERTs where the server refuses it', async () => {
    const db = { src: dbs.names.src!, tgt: dbs.names.tgt! };
    const shape = (charset: string, blobs: boolean) => `(id bigint unsigned PRIMARY KEY, s varchar(100) NULL, tx text NULL, c char(5) NULL,
      ${blobs ? 'b blob NULL, vb varbinary(300) NULL,' : ''}
      d decimal(30,10) NULL, f double NULL, fl float NULL, dt datetime(6) NULL, ts timestamp(3) NULL, tm time(2) NULL, dte date NULL,
      y year NULL, e enum('a','b c','é') NULL, st set('x','y') NULL, j json NULL, i bigint NULL, u tinyint unsigned NULL) DEFAULT CHARSET=${charset}`;
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const json = JSON.stringify({ a: '\t\n\\', b: [1.5, null] });
    for (const blobs of [true, false]) {
      const source = `odd_${blobs ? 'blobs' : 'text'}`;
      await conn.query(`CREATE TABLE \`${db.src}\`.${source} ${shape('utf8mb4', blobs)}`);
      const b = (v: string) => (blobs ? `${v},` : '');
      await conn.query(`INSERT INTO \`${db.src}\`.${source} VALUES
        (1, '\\N', 'a\tb\nc\r\\d', 'x', ${b('?, ?')} '-12345678901234567890.0123456789', 1.7976931348623157e308, 3.25, '2024-02-29 23:59:59.999999', '2038-01-19 03:14:07.999', '-838:59:59.00', '1000-01-01', 1901, 'b c', 'x,y', ?, -9223372036854775808, 255),
        (2, '', '', '', ${b("'', ''")} 0, -0.0, -1.5e-30, '1000-01-01 00:00:00', '1970-01-01 00:00:01', '00:00:00', '9999-12-31', 2155, 'a', '', '[]', 0, 0),
        (3, NULL, NULL, NULL, ${b('NULL, NULL')} NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
        (4, 'é ü ß \\'quote" ', CONCAT('zero', CHAR(0), 'byte'), 'ab ', ${b("?, 'tab\there'")} 1, 1e-300, 1, '2000-01-01', '2000-01-01', '12:00', '2000-01-01', 2000, 'é', 'y', 'null', 1, 1)`,
      blobs ? [all, Buffer.from('\\N'), json, Buffer.from([0, 9, 10, 13, 92, 78])] : [json]);
      const src = await sql.connect('edxapp');
      const info = (await inspectTable(src, { database: db.src, table: source }))!;
      const cols = copiedColumns(info);
      const rowsOf = async (database: string, table: string) => {
        const [rows] = await conn.query(`SELECT id, CONCAT_WS('|', ${cols.map((c) => `IFNULL(HEX(CONVERT(\`${c}\` USING utf8mb4)), 'NULL')`).join(', ')}) AS v FROM \`${database}\`.\`${table}\` ORDER BY id`);
        return rows;
      };
      // bytes exact into UTF-8 columns; text converted into latin1 ones, as an INSERT's values are; blobs into latin1 text: INSERTs
      for (const [charset, expected] of [['utf8mb4', blobs ? 'binary' : 'utf8mb4'], ['latin1', blobs ? null : 'utf8mb4']] as const) {
        for (const refuse of expected === null ? [false] : [false, true]) {
          const table = `${source}_${charset}_${refuse ? 'refused' : 'load'}`;
          await conn.query(`CREATE TABLE \`${db.tgt}\`.\`${table}\` ${shape(charset, blobs)}`);
          const real = await sql.connectDedicated('csmh');
          let loads = 0;
          const target: SqlConnection = Object.assign(Object.create(real) as SqlConnection, {
            loadLocal: (q: string, data: AsyncIterable<Uint8Array>) => {
              loads += 1;
              return real.loadLocal!(q, data);
            },
          });
          const targetInfo = (await inspectTable(real, { database: db.tgt, table }))!;
          const loadCharset = loadDataCharset(info.columns, targetInfo.columns, cols, cols);
          expect(loadCharset).toBe(expected);
          const t: CopyTables = {
            source: src, target, sourceTable: { database: db.src, table: source }, targetTable: { database: db.tgt, table }, idColumn: 'id', keyIndex: 'PRIMARY',
            columns: cols, targetColumns: cols, hash: { source: hashColumns(info, cols), target: hashColumns(targetInfo, cols) }, loadCharset,
          };
          if (refuse) await conn.query('SET GLOBAL local_infile = 0');
          try {
            expect((await copyRange(t, { lo: '0', hi: '10' })).inserted).toBe(4);
            expect((await copyRange(t, { lo: '0', hi: '10' })).inserted).toBe(0);
            expect((await copyRange(t, { lo: '100', hi: '200' })).inserted).toBe(0);
            if (refuse) await conn.query('SET GLOBAL local_infile = 1');
            expect(loads).toBe(expected === null ? 0 : refuse ? 1 : 3);
            expect(await rowsOf(db.tgt, table)).toEqual(await rowsOf(db.src, source));
            expect(await verifyRange(t, { lo: '0', hi: '10' })).toMatchObject({ rows: '4', repaired: false });
          } finally {
            if (refuse) await conn.query('SET GLOBAL local_infile = 1');
            await real.close();
          }
        }
      }
    }
  });

  it('two servers: FLOAT values arrive exactly, by LOAD DATA and by INSERTs, and a float one step off is found', async () => {
    const db = { src: dbs.names.src!, tgt: dbs.names.tgt! };
    // The server prints a FLOAT with six significant digits: 16777217 reads as 1.67772e7, 123456.789 as 123457.
    await conn.query(`CREATE TABLE \`${db.src}\`.floats (id bigint unsigned PRIMARY KEY, f float NULL, fd float(7,3) NULL, b blob NULL)`);
    await conn.query(`INSERT INTO \`${db.src}\`.floats VALUES (1, 16777217, 1234.567, 'x'), (2, 123456.789, -0.5, NULL), (3, 0.1, NULL, ''), (4, -3.4028234e38, 9999.999, NULL), (5, 1.17549435e-38, 0, NULL), (6, NULL, 1, NULL)`);
    const src = await sql.connect('edxapp');
    const info = (await inspectTable(src, { database: db.src, table: 'floats' }))!;
    const exact = async (database: string, table: string) => {
      const [rows] = await conn.query(`SELECT id, CAST(f AS DOUBLE) AS f, CAST(fd AS DOUBLE) AS fd FROM \`${database}\`.\`${table}\` ORDER BY id`);
      return rows;
    };
    for (const path of ['load', 'inserts'] as const) {
      const table = `floats_${path}`;
      await conn.query(`CREATE TABLE \`${db.tgt}\`.\`${table}\` LIKE \`${db.src}\`.floats`);
      const target = await sql.connect('csmh');
      const targetInfo = (await inspectTable(target, { database: db.tgt, table }))!;
      const cols = copiedColumns(info);
      const loadCharset = path === 'load' ? loadDataCharset(info.columns, targetInfo.columns, cols, cols) : null;
      if (path === 'load') expect(loadCharset).toBe('binary');
      const t: CopyTables = {
        source: src, target, sourceTable: { database: db.src, table: 'floats' }, targetTable: { database: db.tgt, table }, idColumn: 'id', keyIndex: 'PRIMARY',
        columns: cols, targetColumns: cols, hash: { source: hashColumns(info, cols), target: hashColumns(targetInfo, cols) }, loadCharset,
      };
      expect((await copyRange(t, { lo: '0', hi: '10' })).inserted).toBe(6);
      expect(await exact(db.tgt, table)).toEqual(await exact(db.src, 'floats'));
      expect(await verifyRange(t, { lo: '0', hi: '10' })).toMatchObject({ rows: '6', repaired: false });
      // the next float up from 16777216 is 16777218: both print as 1.67772e7, and verification must still tell them apart
      await conn.query(`UPDATE \`${db.tgt}\`.\`${table}\` SET f = 16777218 WHERE id = 1`);
      await expect(verifyRange(t, { lo: '0', hi: '10' })).rejects.toMatchObject({ name: 'VerificationFailed', message: expect.stringContaining('1 (differs)') });
    }
  });

  it('two servers: a session lost in the middle of a LOAD fails the copy as transient, and the next copy completes', { timeout: 30_000 }, async () => {
    await conn.query(historyTableSql(dbs.names.src!, 'lost', 'int'));
    // far more bytes than the sockets' buffers hold, so the rows after the kill are still to come
    await seedHistory(conn, dbs.names.src!, 'lost', 60_000, { stateBytes: 300 });
    for (const victim of ['target', 'source'] as const) {
      const table = `lost_${victim}`;
      await conn.query(historyTableSql(dbs.names.tgt!, table, 'bigint unsigned'));
      const base: CopyTables = { ...(await tables(table, 'csmh')), sourceTable: { database: dbs.names.src!, table: 'lost' } };
      const info = (await inspectTable(base.source, base.sourceTable))!;
      const targetInfo = (await inspectTable(base.target, base.targetTable))!;
      const loadCharset = loadDataCharset(info.columns, targetInfo.columns, base.columns, base.targetColumns);
      expect(loadCharset).toBe('utf8mb4');
      const victimId = await scalar(victim === 'target' ? base.target : base.source, 'SELECT CONNECTION_ID()');
      // the victim's session is killed once a few thousand rows have left the source
      const real = base.source;
      const source: SqlConnection = Object.assign(Object.create(real) as SqlConnection, {
        async *streamQuery(q: string, params: readonly unknown[]) {
          let n = 0;
          for await (const row of real.streamQuery!(q, params)) {
            if (++n === 5000) {
              await conn.query(`KILL ${victimId}`);
              // the session is gone before another row is handed on
              for (let i = 0; i < 100 && ((await conn.query('SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = ?', [victimId]))[0] as unknown[]).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
            }
            yield row;
          }
        },
      });
      await expect(copyRange({ ...base, source, loadCharset }, { lo: '0', hi: '99999' })).rejects.toMatchObject({ name: 'TransientError' });
      // a session killed while it sat idle between chunks: the next chunk fails at once, it does not wait for rows that never come
      const idle = await sql.connectDedicated('edxapp');
      await conn.query(`KILL ${await scalar(idle, 'SELECT CONNECTION_ID()')}`);
      await new Promise((r) => setTimeout(r, 100));
      await expect(copyRange({ ...base, source: idle, loadCharset }, { lo: '0', hi: '99999' })).rejects.toMatchObject({ name: 'TransientError' });
      await idle.close();
      // a re-run asks for the sessions again: the one killed is replaced, the other is not left in the middle of a result
      const again: CopyTables = { ...(await tables(table, 'csmh')), sourceTable: base.sourceTable, loadCharset };
      await copyRange(again, { lo: '0', hi: '99999' });
      expect(await tableFingerprint(conn, dbs.names.tgt!, table)).toEqual(await tableFingerprint(conn, dbs.names.src!, 'lost'));
    }
  });

  it('two servers: a server whose sql_mode has NO_BACKSLASH_ESCAPES gets every byte exact, by LOAD DATA and by INSERTs', async () => {
    const db = { src: dbs.names.src!, tgt: dbs.names.tgt! };
    await conn.query(`CREATE TABLE \`${db.src}\`.escapes (id bigint unsigned PRIMARY KEY, s varchar(50) NULL, b varbinary(50) NULL)`);
    await conn.query(`INSERT INTO \`${db.src}\`.escapes VALUES (1, 'back\\\\slash', 'tab\there'), (2, 'new\nline \\'q', CONCAT('nul', CHAR(0))), (3, '\\N', NULL)`);
    // sessions opened while the server's default has it (set for the moment the sessions open, then put back)
    const [[{ mode }]] = (await conn.query('SELECT @@GLOBAL.sql_mode AS mode')) as unknown as [[{ mode: string }]];
    await conn.query(`SET GLOBAL sql_mode = CONCAT_WS(',', NULLIF(@@GLOBAL.sql_mode, ''), 'NO_BACKSLASH_ESCAPES')`);
    let sessions: SqlConnection[];
    try {
      sessions = [await sql.connectDedicated('edxapp'), await sql.connectDedicated('csmh'), await sql.connectDedicated('csmh')];
    } finally {
      await conn.query('SET GLOBAL sql_mode = ?', [mode]);
    }
    const [src, ...targets] = sessions;
    const info = (await inspectTable(src!, { database: db.src, table: 'escapes' }))!;
    const cols = copiedColumns(info);
    const hexes = async (database: string, table: string) => (await conn.query(`SELECT id, HEX(s) AS s, HEX(b) AS b FROM \`${database}\`.\`${table}\` ORDER BY id`))[0];
    try {
      for (const [i, path] of (['load', 'inserts'] as const).entries()) {
        const table = `escapes_${path}`;
        await conn.query(`CREATE TABLE \`${db.tgt}\`.\`${table}\` LIKE \`${db.src}\`.escapes`);
        const target = targets[i]!;
        const targetInfo = (await inspectTable(target, { database: db.tgt, table }))!;
        const t: CopyTables = {
          source: src!, target, sourceTable: { database: db.src, table: 'escapes' }, targetTable: { database: db.tgt, table }, idColumn: 'id', keyIndex: 'PRIMARY',
          columns: cols, targetColumns: cols, hash: { source: hashColumns(info, cols), target: hashColumns(targetInfo, cols) },
          loadCharset: path === 'load' ? loadDataCharset(info.columns, targetInfo.columns, cols, cols) : null,
        };
        expect((await copyRange(t, { lo: '0', hi: '10' })).inserted).toBe(3);
        expect(await hexes(db.tgt, table)).toEqual(await hexes(db.src, 'escapes'));
      }
    } finally {
      await Promise.all(sessions.map((c) => c.close()));
    }
  });

  it('finds the next existing id across a gap, and the bounds', async () => {
    const source = await sql.connect('edxapp');
    const ref = { database: dbs.names.src!, table: SRC };
    expect(await nextExistingId(source, ref, 'id', null)).toBe('10');
    expect(await nextExistingId(source, ref, 'id', '10')).toBe('13');
    expect(await nextExistingId(source, ref, 'id', '9007')).toBeNull();
    expect(await idBounds(source, ref, 'id')).toEqual({ min: '10', max: '9007' });
  });

  it('verify re-copies a range with missing rows, and refuses one whose target row differs, naming the id', async () => {
    const table = `${TGT}_verify`;
    await conn.query(historyTableSql(dbs.names.tgt!, table, 'bigint unsigned'));
    const t = await tables(table, 'edxapp');
    await copyRange(t, { lo: '0', hi: '99999' });
    await conn.query(`DELETE FROM \`${dbs.names.tgt}\`.\`${table}\` WHERE id BETWEEN 100 AND 200`);
    expect(await verifyRange(t, { lo: '0', hi: '99999' })).toMatchObject({ repaired: true, rows: '3000' });
    await conn.query(`UPDATE \`${dbs.names.tgt}\`.\`${table}\` SET state = 'written by the application' WHERE id = 1000`);
    await expect(verifyRange(t, { lo: '0', hi: '99999' })).rejects.toMatchObject({
      name: 'VerificationFailed',
      message: expect.stringContaining('1000 (differs)'),
    });
    // the application's row was not overwritten
    const [rows] = await conn.query(`SELECT state FROM \`${dbs.names.tgt}\`.\`${table}\` WHERE id = 1000`);
    expect((rows as { state: string }[])[0]!.state).toBe('written by the application');
  });

  it('moves ids past 2^53 exactly, in both copy paths', async () => {
    await conn.query(historyTableSql(dbs.names.src!, 'big', 'bigint unsigned'));
    const top = 18446744073709551615n;
    await seedHistory(conn, dbs.names.src!, 'big', 5, { first: top - 4n });
    await seedHistory(conn, dbs.names.src!, 'big', 3, { first: 9007199254740991n });
    for (const connection of ['edxapp', 'csmh'] as const) {
      const table = `big_${connection}`;
      await conn.query(historyTableSql(dbs.names.tgt!, table, 'bigint unsigned'));
      const source = await sql.connect('edxapp');
      const info = (await inspectTable(source, { database: dbs.names.src!, table: 'big' }))!;
      const t: CopyTables = { ...(await tables(table, connection)), sourceTable: { database: dbs.names.src!, table: 'big' }, columns: copiedColumns(info) };
      const result = await copyRange(t, { lo: '9007199254740991', hi: top.toString() });
      expect(result.inserted).toBe(8);
      const [rows] = await conn.query(`SELECT CAST(id AS CHAR) AS text_id FROM \`${dbs.names.tgt}\`.\`${table}\` ORDER BY id`);
      expect((rows as { text_id: string }[]).map((r) => r.text_id)).toEqual([
        '9007199254740991', '9007199254740992', '9007199254740993',
        '18446744073709551611', '18446744073709551612', '18446744073709551613', '18446744073709551614', '18446744073709551615',
      ]);
    }
  });
});
