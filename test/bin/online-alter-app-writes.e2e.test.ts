import { describe, it } from 'vitest';
import { underWriters } from '../helpers/alter-app-writes.ts';

// FERRY_APP_ROWS / FERRY_APP_RUNS make it the full check (500,000 rows, 10 runs); the suite runs it smaller.
const ROWS = Number(process.env.FERRY_APP_ROWS ?? 150_000);
const RUNS = Number(process.env.FERRY_APP_RUNS ?? 3);

describe('ferry local online-alter under an application writing single rows', () => {
  it(`fails none of the application's writes in ${RUNS} runs, and every write is in the altered table`, () =>
    underWriters({ prefix: 'appw', rows: ROWS, runs: RUNS, writers: 1, pauseMillis: 10, cleanup: { mode: 'trickle-delete', batchRows: 20000 } }), 600_000);
});
