import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { tempDir, writeJson } from './cli.ts';
import { admin, historyTableSql, makeDatabases, seedHistory } from './db.ts';

export const SRC = 'courseware_studentmodulehistory';
export const TGT = 'coursewarehistoryextended_studentmodulehistoryextended';

export interface Scenario {
  readonly conn: mysql.Connection;
  readonly src: string;
  readonly tgt: string;
  readonly dir: string;
  readonly stateDir: string;
  input(overrides?: Record<string, unknown>): Record<string, unknown>;
  inputFile(overrides?: Record<string, unknown>): string;
  flags(): Record<string, string>;
  close(): Promise<void>;
}

/** A source history table (seeded), an empty BIGINT UNSIGNED target, a state dir and an input, all unique to one test. */
export async function scenario(opts: { sourceIdType?: string; rows?: number; first?: bigint; step?: bigint; stateBytes?: number } = {}): Promise<Scenario> {
  const conn = await admin();
  const dbs = await makeDatabases(conn, 'edxapp', 'csmh');
  const src = dbs.names.edxapp!;
  const tgt = dbs.names.csmh!;
  await conn.query(historyTableSql(src, SRC, opts.sourceIdType ?? 'int'));
  await conn.query(historyTableSql(tgt, TGT, 'bigint unsigned'));
  if (opts.rows) await seedHistory(conn, src, SRC, opts.rows, { first: opts.first, step: opts.step, stateBytes: opts.stateBytes });
  const dir = tempDir();
  const stateDir = join(dir, 'state');
  const input = (overrides: Record<string, unknown> = {}) => ({
    migrationId: `t-${src.slice(-12)}`,
    source: { connection: 'edxapp', database: src, table: SRC },
    target: { connection: 'csmh', database: tgt, table: TGT },
    idOffset: '1000',
    catchUp: { quietSeconds: 1, pollSeconds: 1 },
    chunk: { targetMillis: 200, minRows: 50, maxRows: 5000 },
    throttle: { maxThreadsRunning: 200, waitSeconds: 1 },
    flags: {
      copy: { ENABLE_CSMH_EXTENDED: 'true', ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES: 'true' },
      cutover: { ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES: 'false' },
    },
    cleanup: { mode: 'trickle-delete', batchRows: 700 },
    ...overrides,
  });
  return {
    conn,
    src,
    tgt,
    dir,
    stateDir,
    input,
    inputFile: (overrides) => writeJson(dir, `input-${Math.random().toString(36).slice(2)}.json`, input(overrides)),
    flags: () => {
      try {
        return JSON.parse(readFileSync(join(stateDir, 'flags.json'), 'utf8'));
      } catch {
        return {};
      }
    },
    close: async () => {
      await dbs.drop();
      await conn.end();
    },
  };
}
