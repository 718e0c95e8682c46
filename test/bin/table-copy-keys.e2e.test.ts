import { describe, it } from 'vitest';
import { keyTables, moveUnderApplication, SHAPES } from '../helpers/key-tables.ts';

/**
 * table-copy of a table keyed by anything else than one integer column: the copy, the catch-up, the
 * verification, the sweep and the trickle-delete go by the key's ranges. The application inserts
 * rows with keys anywhere in the table (inside ranges already copied) into the old table until it
 * has seen the copy flags, then inserts, updates and deletes rows of its own in the new one; a late
 * server inserts into the old table while the trickle-delete runs. At the end the new table holds
 * exactly every row ever written to the old one and the application's own rows as it left them.
 * The same between two servers and in partitions, killed runs, the cut-over's refusals and the
 * revert are files of their own (table-copy-keys-*.e2e.test.ts), which run at once.
 */
describe('ferry local table-copy of a table keyed by a composite, string or binary key', () => {
  const setUp = keyTables();

  it.each(Object.keys(SHAPES))('moves a table keyed by %s (one server, 1 partitions), with the application writing both tables throughout', (name) => moveUnderApplication(setUp, name, 'one server', 1), 400_000);
});
