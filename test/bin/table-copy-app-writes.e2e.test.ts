import { describe, expect, it } from 'vitest';
import { runFerry, startFerry } from '../helpers/cli.ts';
import { failures, startAppWriter, type AppOp, type AppStatement } from '../helpers/app-writer.ts';
import { scenario, SRC, TGT } from '../helpers/scenario.ts';

const ROWS = Number(process.env.FERRY_APP_ROWS ?? 150_000);
const RUNS = Number(process.env.FERRY_APP_RUNS ?? 2);

async function phaseOf(conn: import('mysql2/promise').Connection, db: string): Promise<string | null> {
  const [rows] = await conn.query(`SELECT phase FROM \`${db}\`._ferry_checkpoints`).catch(() => [[]] as never);
  return (rows as { phase: string }[])[0]?.phase ?? null;
}

/**
 * The application's writes never fail because table-copy runs: single-row autocommit writes with
 * no retry, to the old table while the copy starts, to the new one once it has seen the copy flags
 * (its own rows there inserted, updated and deleted while the copy, the verification, the sweep
 * and the trickle-delete run), and a late server still inserting into the old table while the
 * trickle-delete empties it; and every row reaches the new table.
 */
describe('ferry local table-copy under an application writing single rows', () => {
  it(`fails none of the application's writes in ${RUNS} runs, and every row written to the old table reaches the new one`, async () => {
    for (let run = 1; run <= RUNS; run++) {
      const sc = await scenario({ rows: ROWS, stateBytes: 200 });
      try {
        const src = `\`${sc.src}\`.${SRC}`;
        const tgt = `\`${sc.tgt}\`.${TGT}`;
        // the application: history rows into the old table until it has seen the copy flags (3 seconds after they are set, while
        // the copy runs), then into the new one ("write new"), where it also changes and deletes its own rows
        let flagsSeenAt: number | null = null;
        const writesNew = () => {
          if (flagsSeenAt === null && sc.flags()[`/ferry/${sc.input().migrationId}/flags/ENABLE_CSMH_EXTENDED`] === 'true') flagsSeenAt = Date.now();
          return flagsSeenAt !== null && Date.now() - flagsSeenAt > 3000;
        };
        const own: string[] = [];
        const app = startAppWriter((i): AppStatement => {
          if (!writesNew()) return { op: 'insert-old', sql: `INSERT INTO ${src} (created, state, student_module_id) VALUES (NOW(6), 'app', ?)`, params: [i] };
          if (i % 3 === 1 && own.length) return { op: 'update-new', sql: `UPDATE ${tgt} SET grade = ? WHERE id = ?`, params: [i, own[own.length - 1]] };
          if (i % 3 === 2 && own.length) return { op: 'delete-new', sql: `DELETE FROM ${tgt} WHERE id = ?`, params: [own.pop()] };
          return { op: 'insert-new', sql: `INSERT INTO ${tgt} (created, state, student_module_id) VALUES (NOW(6), 'app-new', ?)`, params: [i] };
        });
        const tracking = setInterval(() => {
          for (const o of app.ops) if (o.op === 'insert-new' && o.insertId && !(o as { seen?: boolean }).seen) { (o as { seen?: boolean }).seen = true; own.push(o.insertId); }
        }, 5);
        const running = startFerry(['local', 'table-copy', '--input', sc.inputFile({ chunk: { targetMillis: 500, minRows: 100, maxRows: 100000 }, cleanup: { mode: 'trickle-delete', batchRows: 20000 }, catchUp: { quietSeconds: 2, pollSeconds: 1 } }), '--state-dir', sc.stateDir, '--approve', 'all']);
        // a late server still writing the old table for a while once the trickle-delete has begun
        let late: AppOp[] = [];
        const lateServer = (async () => {
          for (;;) {
            const phase = await phaseOf(sc.conn, sc.tgt);
            if (phase === 'cleanup' || phase === 'done' || running.child.exitCode !== null) break;
            await new Promise((r) => setTimeout(r, 20));
          }
          if (running.child.exitCode !== null) return;
          const w = startAppWriter((i) => ({ op: 'late-insert-old', sql: `INSERT INTO ${src} (created, state, student_module_id) VALUES (NOW(6), 'late', ?)`, params: [i] }));
          await new Promise((r) => setTimeout(r, 1500));
          late = await w.stop();
        })();
        const result = await running.done;
        await lateServer;
        clearInterval(tracking);
        const ops = await app.stop();
        expect(result.code, result.stderr).toBe(0);
        expect(failures([...ops, ...late]), `run ${run} of ${RUNS}: the application's writes that failed`).toEqual([]);
        const toOld = [...ops, ...late].filter((o) => o.op.endsWith('-old'));
        expect(toOld.length).toBeGreaterThan(20);
        expect(late.length, 'the late server wrote during the trickle-delete').toBeGreaterThan(10);
        // every row written to the old table is in the new one, and the old one is empty
        const [inNew] = await sc.conn.query(`SELECT COUNT(*) AS n FROM ${tgt} WHERE id IN (?)`, [toOld.map((o) => o.insertId)]);
        expect(Number((inNew as { n: string }[])[0]!.n)).toBe(toOld.length);
        const [left] = await sc.conn.query(`SELECT COUNT(*) AS n FROM ${src}`);
        expect(Number((left as { n: string }[])[0]!.n)).toBe(0);
        const [copied] = await sc.conn.query(`SELECT COUNT(*) AS n FROM ${tgt} WHERE id <= ?`, [ROWS]);
        expect(Number((copied as { n: string }[])[0]!.n)).toBe(ROWS);
        // the application's own rows in the new table are as it left them
        const inserted = ops.filter((o) => o.op === 'insert-new').length;
        const deleted = ops.filter((o) => o.op === 'delete-new').length;
        const [mine] = await sc.conn.query(`SELECT COUNT(*) AS n FROM ${tgt} WHERE state = 'app-new'`);
        expect(Number((mine as { n: string }[])[0]!.n)).toBe(inserted - deleted);
        expect((await runFerry(['stats', '--input', sc.inputFile()])).code).toBe(0);
      } finally {
        await sc.close();
      }
    }
  }, 600_000);
});
