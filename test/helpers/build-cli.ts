import { build } from '../../bin/build.mjs';

/** The tests run the command line as users do, compiled: build it once from the sources under test. */
export default async function setup(): Promise<void> {
  await build();
}
