import { describe, it } from 'vitest';
import { TABLE_UK, underWriters } from '../helpers/alter-app-writes.ts';

// FERRY_APP_RUNS makes it the full check (10 runs); the suite runs it smaller.
const RUNS = Number(process.env.FERRY_APP_RUNS ?? 3);

/** As online-alter-app-writes.e2e.test.ts, with several writers at once, and a table with no primary key. */
describe('ferry local online-alter under several applications writing single rows', () => {
  // Several writers with almost no pause: writes meet ferry's copy, its repairs of ranges a write
  // moved under the verification, and the swap, at once.
  it(`fails none of the writes of 4 writers at once in ${RUNS} runs, and every write is in the altered table`, () =>
    underWriters({ prefix: 'appw4', rows: 20_000, runs: RUNS, writers: 4, pauseMillis: 1, cleanup: { mode: 'drop' } }), 600_000);

  // Writers that never pause meet the RENAME half-way (a write that opened the table finds the
  // shadow locked, lets go and opens both again): then the altered table's revert-window triggers
  // must use no table the write did not prepare.
  it('swaps under 8 writers that never pause, failing none of their writes in 5 runs', () =>
    underWriters({ prefix: 'appsw', rows: 3000, runs: 5, writers: 8, pauseMillis: 0, cleanup: { mode: 'drop' } }), 600_000);

  // No primary key: ferry reads, captures, repairs and swaps by the unique key the table is stored by.
  it('alters a table keyed by a unique key instead of a primary key, failing none of 2 writers\' writes', () =>
    underWriters({ prefix: 'appuk', rows: 20_000, runs: 1, writers: 2, pauseMillis: 2, cleanup: { mode: 'trickle-delete', batchRows: 5000 }, table: TABLE_UK }), 600_000);
});
