/** A place a migration reads from or writes to, by connection name (never a credential). */
export interface BoundPlace {
  readonly connection: string;
  readonly database: string;
  /** The table (MySQL); absent for a CouchDB database. */
  readonly table?: string;
}

/**
 * What a migration id is bound to: the machine and what its input moves. Tuning (knobs, chunk,
 * throttle) is no part of it, so a resume with other settings is the same migration.
 */
export interface MigrationBinding {
  readonly machine: string;
  readonly source: BoundPlace;
  /** Where it goes; absent for online-alter, which alters its table in place. */
  readonly target?: BoundPlace;
  /** doctype-copy: the doc types moved, sorted. */
  readonly docTypes?: readonly string[];
}

/** Who holds a migration id: the binding, and when and by which execution it was claimed. */
export interface MigrationClaim {
  readonly binding: MigrationBinding;
  readonly claimedAt: string;
  readonly execution: string;
}

/**
 * The claim port: a migration id is claimed once per deployment (an SSM parameter created without
 * overwrite on AWS, a file created without overwrite in the state dir locally) and keeps its
 * binding for good, the migration done or not.
 */
export interface MigrationClaims {
  /**
   * Binds the id to `claim.binding` when nothing holds it yet, atomically: of two claims at once,
   * one wins. Returns the claim that holds the id (this one, or the one before it), so the caller
   * compares its binding.
   */
  claim(migrationId: string, claim: MigrationClaim): Promise<MigrationClaim>;
  /** The claim that holds the id, or null; reads only. */
  ownerOf(migrationId: string): Promise<MigrationClaim | null>;
}
