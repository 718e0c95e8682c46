/** Full name of a flag: the same on SSM (under the deployment's root) and in the local flags file. */
export function flagParameterName(migrationId: string, name: string, root = '/ferry'): string {
  return `${root}/${migrationId}/flags/${name}`;
}

/** Set to "true" to hold a migration's copying at its next chunk. */
export const PAUSED_FLAG = 'FERRY_PAUSED';

/** The flag-store port: SSM Parameter Store on AWS, a JSON file locally. */
export interface FlagStore {
  get(migrationId: string, name: string): Promise<string | undefined>;
  /** Sets every flag given; flags not named are left as they are. */
  set(migrationId: string, values: Readonly<Record<string, string>>): Promise<void>;
  /** Every flag of the migration, by short name. */
  list(migrationId: string): Promise<Record<string, string>>;
}
