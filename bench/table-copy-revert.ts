/**
 * What `ferry revert` of a table-copy costs, with its revert window and without: the edX history
 * table (200,000 rows, `BENCH_REVERT_ROWS`; every third id used, so the ids have gaps) copied to a
 * BIGINT table in another database and cut over; then four writers (single rows, autocommit, no
 * retry, 5 ms pause) insert, update and delete rows in the new table, as the application does after
 * the cut-over, from 5 s before the revert is asked for to 2 s after it ends. The rows they update
 * and delete are spread over the whole table (`BENCH_REVERT_WRITES=spread`, the worst case for the
 * window: nearly every span holds one) or among the newest tenth of it (`recent`, as a history
 * table's are). The same run twice on fresh databases, `revertWindow` true then false, against the
 * single statement a team would otherwise run to get the old table back, `INSERT … SELECT` of the
 * whole new table into an empty table of the old shape, on the same data in the same process.
 * Prints each run's revert time, the spans and rows it compared and carried, the ratio to the
 * single statement, and the application's statements, errors, median, p99 and max latency before
 * (while the window's triggers log its writes, or not) and during the revert.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { admin, historyTableSql, makeDatabases, seedHistory } from '../test/helpers/db.ts';
import { cutOverThenRevert, latencyLine, now } from './run-ferry.ts';
import { failures, latency, startAppWriter, type AppOp, type AppStatement, type AppWriter, type LatencySummary } from '../test/helpers/app-writer.ts';

const ROWS = Number(process.env.BENCH_REVERT_ROWS ?? 200_000);
const WRITES = process.env.BENCH_REVERT_WRITES === 'recent' ? 'recent' : 'spread';
const STEP = 3;
const WRITERS = 4;

const line = (name: string, l: LatencySummary) => latencyLine(name, l, 34);

/** An id the application updates or deletes: anywhere, or among the newest tenth of the rows copied. */
function someId(): string {
  const from = WRITES === 'recent' ? Math.floor(ROWS * 0.9) : 0;
  return String(1 + STEP * (from + Math.floor(Math.random() * (ROWS - from))));
}

/** The application after the cut-over, writer k: inserts, updates of copied rows and, one statement in ten, a delete. */
function newTableWriter(table: string, k: number): (i: number) => AppStatement {
  return (i) => {
    if (i % 10 === 9) return { op: 'delete', sql: `DELETE FROM ${table} WHERE id = ?`, params: [someId()] };
    if (i % 2 === 1) return { op: 'update', sql: `UPDATE ${table} SET state = ?, grade = ? WHERE id = ?`, params: [`updated by writer ${k} (${i})`, i % 100, someId()] };
    return { op: 'insert', sql: `INSERT INTO ${table} (created, state, student_module_id) VALUES (NOW(6), ?, ?)`, params: [`inserted by writer ${k}`, i % 997] };
  };
}

const [SRC, TGT] = ['courseware_studentmodulehistory', 'coursewarehistoryextended_studentmodulehistoryextended'];
const conn = await admin();
console.log(`table-copy revert benchmark: ${ROWS.toLocaleString('en-US')} rows (every ${STEP}rd id used), ${WRITERS} writers on the new table (single rows, autocommit, 5 ms pause), updates and deletes ${WRITES === 'recent' ? 'among the newest tenth of the rows' : 'spread over the whole table'}`);
let baseline: number | null = null;
for (const revertWindow of [true, false]) {
  const dbs = await makeDatabases(conn, 'edxapp', 'csmh');
  const [src, tgt] = [dbs.names.edxapp!, dbs.names.csmh!];
  try {
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
      revertWindow,
      cleanup: { mode: 'trickle-delete' },
    }));
    const stateDir = join(dir, 'state');
    const table = `\`${tgt}\`.\`${TGT}\``;
    let writers: AppWriter[] = [];
    const { window, asked, ended, out } = await cutOverThenRevert('table-copy', join(dir, 'in.json'), stateDir, migrationId, async () => {
      writers = Array.from({ length: WRITERS }, (_, k) => startAppWriter(newTableWriter(table, k), { pauseMillis: 5 }));
    });
    const ops: AppOp[] = (await Promise.all(writers.map((w) => w.stop()))).flat();
    if (failures(ops).length) throw new Error(`the application's writes failed: ${failures(ops).slice(0, 3).join('; ')}`);
    const revertSeconds = (ended - asked) / 1000;

    if (baseline === null) {
      // the statement a team would run instead: the old table rebuilt from the new one, whole
      await conn.query(historyTableSql(src, 'rebuilt', 'int'));
      const rebuildStarted = now();
      await conn.query(`INSERT INTO \`${src}\`.rebuilt SELECT * FROM ${table}`);
      baseline = (now() - rebuildStarted) / 1000;
      console.log(`INSERT … SELECT of the whole new table into an empty table of the old shape: ${baseline.toFixed(2)} s`);
    }
    const r = out.reverted as typeof out.reverted & { compared?: string; logEntries?: number };
    console.log(`revertWindow ${revertWindow}: ferry revert ${revertSeconds.toFixed(2)} s from the decision to reverted (ratio ${(revertSeconds / baseline).toFixed(2)}× the single statement); compared ${r.compared}: ${r.spansCompared} ledger spans, ${r.rowsCompared} rows${r.logEntries !== undefined ? ` (${r.logEntries} log entries)` : ''}; ${r.rowsCarried} rows carried back`);
    console.log(line('after the cut-over, before the revert', latency(ops, window, asked)));
    console.log(line('during the revert', latency(ops, asked, ended)));
    console.log(`  application failures: ${failures(ops).length} of ${ops.length} statements`);
  } finally {
    await dbs.drop();
  }
}
await conn.end();
