import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { flagParameterName, type FlagStore, type ParameterKind } from '../core/ports/flags.ts';

/**
 * `<state-dir>/flags.json`: `{ "/ferry/<id>/flags/<NAME>": "value" }`, replaced atomically on each
 * write; knobs likewise in `<state-dir>/knobs.json` under `/ferry/<id>/knobs/`.
 */
export class FileFlagStore implements FlagStore {
  readonly path: string;
  constructor(stateDir: string, private readonly kind: ParameterKind = 'flags') {
    this.path = join(stateDir, `${kind}.json`);
  }

  private name(migrationId: string, name: string): string {
    return flagParameterName(migrationId, name, '/ferry', this.kind);
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
    return (await this.readAll())[this.name(migrationId, name)];
  }

  async set(migrationId: string, values: Readonly<Record<string, string>>): Promise<void> {
    if (Object.keys(values).length === 0) return;
    const all = await this.readAll();
    for (const [name, value] of Object.entries(values)) all[this.name(migrationId, name)] = value;
    await this.writeAll(all);
  }

  async unset(migrationId: string, names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    const all = await this.readAll();
    for (const name of names) delete all[this.name(migrationId, name)];
    await this.writeAll(all);
  }

  private async writeAll(all: Record<string, string>): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(all, null, 2) + '\n');
    await rename(tmp, this.path);
  }

  async list(migrationId: string): Promise<Record<string, string>> {
    const prefix = this.name(migrationId, '');
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(await this.readAll())) {
      if (key.startsWith(prefix)) out[key.slice(prefix.length)] = value;
    }
    return out;
  }
}
