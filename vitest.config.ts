import { defineConfig } from 'vitest/config';

/**
 * Files whose promises rest on which write transactions are open on the whole server (INNODB_TRX
 * says nothing of tables): another file's long transaction makes ferry keep every hole, by design,
 * and these files measure that it keeps few, or that the low water is known. They run after the
 * others, on their own: keep them to such tests alone, since every second here adds to the run.
 */
const ALONE = ['test/bin/table-copy-no-loss-holes.e2e.test.ts', 'test/lambdas/core/tables/horizon.test.ts'];

export default defineConfig({
  test: {
    globalSetup: ['test/helpers/require-mariadb.ts', 'test/helpers/require-pouchdb-server.ts', 'test/helpers/build-cli.ts'],
    setupFiles: ['bin/cli/polyfill.ts', 'test/helpers/stray-processes.ts'],
    pool: 'forks',
    // Most of an end-to-end test is spent waiting (quiet periods, throttle waits), so run more files than cores.
    maxWorkers: 3,
    testTimeout: 120_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: 'together', include: ['test/**/*.test.ts'], exclude: ALONE, sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'alone', include: ALONE, fileParallelism: false, sequence: { groupOrder: 1 } } },
    ],
  },
});
