import { describe, it } from 'vitest';
import { keyTables, moveUnderApplication } from '../helpers/key-tables.ts';

/** As table-copy-keys.e2e.test.ts, with the rows streamed between two servers, or the initial copy in partitions. */
describe('ferry local table-copy of a table keyed by a composite, string or binary key, between two servers or in partitions', () => {
  const setUp = keyTables();

  it.each([
    ['CHAR(36) UUID', 'two servers', 1],
    ['composite (int, datetime(6))', 'two servers', 1],
    ['BINARY(16)', 'one server', 3],
    ['composite (varchar, int)', 'two servers', 4],
  ] as const)('moves a table keyed by %s (%s, %i partitions), with the application writing both tables throughout', (name, servers, partitions) => moveUnderApplication(setUp, name, servers, partitions), 400_000);
});
