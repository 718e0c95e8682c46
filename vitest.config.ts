import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/require-mariadb.ts', 'test/helpers/require-pouchdb-server.ts', 'test/helpers/build-cli.ts'],
    setupFiles: ['bin/cli/polyfill.ts', 'test/helpers/stray-processes.ts'],
    pool: 'forks',
    // Most of an end-to-end test is spent waiting (quiet periods, throttle waits), so run more files than cores.
    maxWorkers: 3,
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
