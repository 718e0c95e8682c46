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
