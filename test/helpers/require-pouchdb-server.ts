import type { TestProject } from 'vitest/node';
import { startPouchDbServer } from '../../bin/cli/embedded-couch.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    couchUrl: string;
  }
}

/** One real PouchDB Server process for the whole run, on a free port; each test makes its own databases. */
export default async function pouchDbServer(project: TestProject): Promise<() => Promise<void>> {
  const server = await startPouchDbServer();
  project.provide('couchUrl', server.url);
  return () => server.stop();
}
