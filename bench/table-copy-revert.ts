/**
 * What `ferry revert` of a table-copy costs: the edX history table (200,000 rows,
 * `BENCH_REVERT_ROWS`; every third id used, so the ids have gaps) copied to a BIGINT table in
 * another database and cut over; then four writers (single rows, autocommit, no retry, 5 ms pause)
 * insert, update and delete rows in the new table, as the application does after the cut-over,
 * from 5 s before the revert is asked for to 2 s after it ends. Against the single statement a team
 * would otherwise run to get the old table back, `INSERT … SELECT` of the whole new table into an
 * empty table of the old shape, on the same data in the same run. Prints both times, the ratio,
 * the rows the revert compared and carried, and the application's statements, errors, median, p99
 * and max latency before and during the revert.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { admin, historyTableSql, makeDatabases, seedHistory } from '../test/helpers/db.ts';
import { cutOverThenRevert, latencyLine, now } from './run-ferry.ts';
import { failures, latency, startAppWriter, type AppOp, type AppStatement, type AppWriter, type LatencySummary } from '../test/helpers/app-writer.ts';

const ROWS = Number(process.env.BENCH_REVERT_ROWS ?? 200_000);
const STEP = 3;
const WRITERS = 4;

const line = (name: string, l: LatencySummary) => latencyLine(name, l, 34);

/** The application after the cut-over, writer k: inserts, updates of copied rows (its own ids ≡ k mod writers) and, one statement in ten, a delete. */
function newTableWriter(table: string, k: number): (i: number) => AppStatement {
  return (i) => {
    const id = 1 + STEP * Math.floor(Math.random() * ROWS);
    if (i % 10 === 9) return { op: 'delete', sql: `DELETE FROM ${table} WHERE id = ?`, params: [String(id)] };
    if (i % 2 === 1) return { op: 'update', sql: `UPDATE ${table} SET state = ?, grade = ? WHERE id = ?`, params: [`updated by writer ${k} (${i})`, i % 100, String(id)] };
    return { op: 'insert', sql: `INSERT INTO ${table} (created, state, student_module_id) VALUES (NOW(6), ?, ?)`, params: [`inserted by writer ${k}`, i % 997] };
  };
}

const conn = await admin();
const dbs = await makeDatabases(conn, 'edxapp', 'csmh');
const [src, tgt] = [dbs.names.edxapp!, dbs.names.csmh!];
try {
  const [SRC, TGT] = ['courseware_studentmodulehistory', 'coursewarehistoryextended_studentmodulehistoryextended'];
  await conn.query(historyTableSql(src, SRC, 'int'));
  await conn.query(historyTableSql(tgt, TGT, 'bigint unsigned'));
  await seedHistory(conn, src, SRC, ROWS, { step: BigInt(STEP) });
  const dir = mkdtempSync(join(tmpdir(), 'tcrb-'));
  const migrationId = `tcrb-${Date.now()}`;
  writeFileSync(join(dir, 'in.json'), JSON.stringify({
    migrationId,
    source: { connection: 'edxapp', database: src, table: SRC },
    target: { connection: 'csmh', database: tgt, table: TGT },
    catchUp: { quietSeconds: 1, pollSeconds: 1 },
    flags: { copy: { WRITE_NEW: 'true' }, cutover: { READ_NEW: 'true' } },
    cleanup: { mode: 'trickle-delete' },
  }));
  const stateDir = join(dir, 'state');
  console.log(`table-copy revert benchmark: ${ROWS.toLocaleString('en-US')} rows (every ${STEP}rd id used), ${WRITERS} writers on the new table (single rows, autocommit, 5 ms pause)`);
  const table = `\`${tgt}\`.\`${TGT}\``;
  let writers: AppWriter[] = [];
  const { window, asked, ended, out } = await cutOverThenRevert('table-copy', join(dir, 'in.json'), stateDir, migrationId, async () => {
    writers = Array.from({ length: WRITERS }, (_, k) => startAppWriter(newTableWriter(table, k), { pauseMillis: 5 }));
  });
  const ops: AppOp[] = (await Promise.all(writers.map((w) => w.stop()))).flat();
  if (failures(ops).length) throw new Error(`the application's writes failed: ${failures(ops).slice(0, 3).join('; ')}`);
  const revertSeconds = (ended - asked) / 1000;

  // the statement a team would run instead: the old table rebuilt from the new one, whole
  await conn.query(historyTableSql(src, 'rebuilt', 'int'));
  const rebuildStarted = now();
  await conn.query(`INSERT INTO \`${src}\`.rebuilt SELECT * FROM ${table}`);
  const rebuildSeconds = (now() - rebuildStarted) / 1000;

  console.log(`ferry revert: ${revertSeconds.toFixed(2)} s from the decision to reverted; ${out.reverted.spansCompared} ledger spans, ${out.reverted.rowsCompared} rows compared, ${out.reverted.rowsCarried} rows carried back`);
  console.log(`INSERT … SELECT of the whole new table into an empty table of the old shape: ${rebuildSeconds.toFixed(2)} s`);
  console.log(`ratio: ferry revert ${(revertSeconds / rebuildSeconds).toFixed(2)}× the single statement's time`);
  console.log(line('after the cut-over, before the revert', latency(ops, window, asked)));
  console.log(line('during the revert', latency(ops, asked, ended)));
  console.log(`application failures: ${failures(ops).length} of ${ops.length} statements`);
} finally {
  await dbs.drop();
  await conn.end();
}
