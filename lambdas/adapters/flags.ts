import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { flagParameterName, type FlagStore } from '../core/ports/flags.ts';

/** `<state-dir>/flags.json`: `{ "/ferry/<id>/flags/<NAME>": "value" }`, replaced atomically on each write. */
export class FileFlagStore implements FlagStore {
  readonly path: string;
  constructor(stateDir: string) {
    this.path = join(stateDir, 'flags.json');
  }

  private async readAll(): Promise<Record<string, string>> {
    try {
      return JSON.parse(await readFile(this.path, 'utf8')) as Record<string, string>;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw err;
    }
  }

  async get(migrationId: string, name: string): Promise<string | undefined> {
    return (await this.readAll())[flagParameterName(migrationId, name)];
  }

  async set(migrationId: string, values: Readonly<Record<string, string>>): Promise<void> {
    if (Object.keys(values).length === 0) return;
    const all = await this.readAll();
    for (const [name, value] of Object.entries(values)) all[flagParameterName(migrationId, name)] = value;
    await mkdir(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(all, null, 2) + '\n');
    await rename(tmp, this.path);
  }

  async list(migrationId: string): Promise<Record<string, string>> {
    const prefix = flagParameterName(migrationId, '');
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(await this.readAll())) {
      if (key.startsWith(prefix)) out[key.slice(prefix.length)] = value;
    }
    return out;
  }
}
