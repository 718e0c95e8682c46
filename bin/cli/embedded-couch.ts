import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DEFAULT_COUCH_URL } from '../../lambdas/adapters/couch.ts';

export interface EmbeddedCouch {
  readonly url: string;
  stop(): Promise<void>;
}

/** A TCP port on the loopback interface that nothing listens on now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1500) });
    return res.ok;
  } catch {
    return false;
  }
}

/** Starts `pouchdb-server --in-memory` on a free loopback port, in a scratch directory for its config and log. */
export async function startPouchDbServer(): Promise<EmbeddedCouch> {
  const require = createRequire(import.meta.url);
  const bin = join(dirname(require.resolve('pouchdb-server/package.json')), 'bin', 'pouchdb-server');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'ferry-pouchdb-'));
  const child: ChildProcess = spawn(process.execPath, [bin, '--in-memory', '--port', String(port), '--host', '127.0.0.1', '--no-stdout-logs', '--config', join(dir, 'config.json')], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  while (!(await answers(url))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`pouchdb-server did not start on ${url}: ${stderr.trim() || `exit ${child.exitCode}`}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The embedded default: when no CouchDB connection is configured and nothing answers at the
 * default URL, an in-memory PouchDB Server is started for this run. Returns null when a server is
 * configured or answering.
 */
export async function embeddedCouchIfNeeded(env: NodeJS.ProcessEnv): Promise<EmbeddedCouch | null> {
  if (env.COUCH_URL || Object.keys(env).some((k) => k.startsWith('FERRY_COUCH_'))) return null;
  if (await answers(DEFAULT_COUCH_URL)) return null;
  return startPouchDbServer();
}
