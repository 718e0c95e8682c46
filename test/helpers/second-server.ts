import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { freePort } from '../../bin/cli/embedded-couch.ts';

/** A second, throwaway MariaDB server of its own (data dir, port, socket), for tests that need two servers, a restart, or server settings of their own (`args`). */
export interface SecondServer {
  readonly url: string;
  readonly port: number;
  connect(): Promise<mysql.Connection>;
  /** Stops the server (a clean shutdown) and starts it again on the same data. */
  restart(downMillis?: number): Promise<void>;
  stop(): Promise<void>;
}

function binary(name: string): string {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin']) if (existsSync(join(dir, name))) return join(dir, name);
  throw new Error(`${name} is not installed: the two-server tests start a second MariaDB with it (apt-get install -y mariadb-server, as .ci/run does)`);
}

export async function startSecondServer(opts: { args?: readonly string[] } = {}): Promise<SecondServer> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-mariadb-'));
  const data = join(dir, 'data');
  // a tmpdir of its own: the default, /tmp, is the main server's too, whose temporary tables' files were seen to vanish mid-query beside a second server
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  const asRoot = process.getuid?.() === 0;
  const user = asRoot ? ['--user=root'] : [];
  const install = spawnSync(binary('mariadb-install-db'), ['--no-defaults', `--datadir=${data}`, `--tmpdir=${tmp}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...user], { encoding: 'utf8' });
  if (install.status !== 0) throw new Error(`mariadb-install-db failed: ${install.stderr || install.stdout}`);
  const port = await freePort();
  const url = `mysql://root@127.0.0.1:${port}`;
  let child: ChildProcess | null = null;
  let log = '';
  const start = async () => {
    child = spawn(binary('mariadbd'), ['--no-defaults', `--datadir=${data}`, `--tmpdir=${tmp}`, `--port=${port}`, `--socket=${join(dir, 'sock')}`, '--bind-address=127.0.0.1', `--pid-file=${join(dir, 'pid')}`, ...user, ...(opts.args ?? [])], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d) => (log += d));
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const c = await mysql.createConnection({ uri: url, connectTimeout: 1000 });
        await c.end();
        return;
      } catch {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the second MariaDB did not start on port ${port}:\n${log.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const halt = async () => {
    const c = child as ChildProcess | null;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
  };
  await start();
  return {
    url,
    port,
    connect: () => mysql.createConnection({ uri: url, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true, multipleStatements: true }),
    restart: async (downMillis = 1000) => {
      await halt();
      await new Promise((r) => setTimeout(r, downMillis));
      await start();
    },
    stop: async () => {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
