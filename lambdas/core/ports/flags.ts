/** What a store keeps under a migration: the application's flags, or the operator's live knobs (see knobs.ts). */
export type ParameterKind = 'flags' | 'knobs';

/** Full name of a flag (or knob): the same on SSM (under the deployment's root) and in the local file. */
export function flagParameterName(migrationId: string, name: string, root = '/ferry', kind: ParameterKind = 'flags'): string {
  return `${root}/${migrationId}/${kind}/${name}`;
}

/** Set to "true" to hold a migration's copying at its next chunk. */
export const PAUSED_FLAG = 'FERRY_PAUSED';

/** The flag-store port (flags, or knobs): SSM Parameter Store on AWS, a JSON file locally. */
export interface FlagStore {
  get(migrationId: string, name: string): Promise<string | undefined>;
  /** Sets every flag given; flags not named are left as they are. */
  set(migrationId: string, values: Readonly<Record<string, string>>): Promise<void>;
  /** Every flag of the migration, by short name. */
  list(migrationId: string): Promise<Record<string, string>>;
  /** Removes the flags named; a name not set is no error. */
  unset(migrationId: string, names: readonly string[]): Promise<void>;
}

/** The values of these flags now (null: not set), to be set back by setFlagsBack. */
export async function flagValues(store: FlagStore, migrationId: string, names: readonly string[]): Promise<Record<string, string | null>> {
  const out: Record<string, string | null> = {};
  for (const name of names) out[name] = (await store.get(migrationId, name)) ?? null;
  return out;
}

/** Sets flags back to values recorded by flagValues (a flag not set then is removed); says what it did. */
export async function setFlagsBack(store: FlagStore, migrationId: string, before: Readonly<Record<string, string | null>>): Promise<string> {
  const set = Object.fromEntries(Object.entries(before).filter((e): e is [string, string] => e[1] !== null));
  const unset = Object.entries(before).filter(([, v]) => v === null).map(([k]) => k);
  if (Object.keys(set).length) await store.set(migrationId, set);
  if (unset.length) await store.unset(migrationId, unset);
  return [...Object.entries(set).map(([k, v]) => `${k}=${v}`), ...unset.map((k) => `${k} removed`)].join(', ') || '(none)';
}
