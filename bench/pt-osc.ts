import { spawnSync } from 'node:child_process';

/** Makes sure pt-online-schema-change is on PATH, installing percona-toolkit from Debian's packages if it is not. */
export function ensurePtOsc(): void {
  if (spawnSync('pt-online-schema-change', ['--version']).status === 0) return;
  process.stderr.write('bench: installing percona-toolkit from Debian\'s packages…\n');
  const r = spawnSync('apt-get', ['install', '-y', '-qq', 'percona-toolkit'], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('cannot install percona-toolkit (apt-get install -y percona-toolkit)');
}
