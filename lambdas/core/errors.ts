/**
 * ferry's errors. Each class's `name` is the value an ASL `Retry` or `Catch` names in
 * `ErrorEquals`, and `retryable` says whether trying the same task again can help.
 */
export abstract class FerryError extends Error {
  abstract readonly retryable: boolean;
  /** The database's error number, when a database refused something. */
  readonly errno?: number;
  constructor(message: string, options?: { cause?: unknown; errno?: number }) {
    super(message, options);
    if (options?.errno !== undefined) this.errno = options.errno;
  }
}

/** MySQL/MariaDB error numbers ferry acts on. */
export const ERRNO = { LOCK_WAIT_TIMEOUT: 1205, DEADLOCK: 1213, BINLOG_STATEMENT_MODE: 1665, NO_DEFAULT: 1364, NO_PROCESS_PRIVILEGE: 1227 } as const;

/** The input or the databases it names are not fit to start: nothing has been written. Exit code 2. */
export class InvalidInput extends FerryError {
  override readonly name = 'InvalidInput';
  readonly retryable = false;
  /** @param field dotted path of the input field at fault, e.g. `source.table` */
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
  }
}

/** A dropped connection, a lock wait timeout, a deadlock, an AWS throttle: the same task run again will likely pass. */
export class TransientError extends FerryError {
  override readonly name = 'TransientError';
  readonly retryable = true;
}

/** A database refused a statement for a reason a retry cannot fix. */
export class DatabaseError extends FerryError {
  override readonly name = 'DatabaseError';
  readonly retryable = false;
}

/** The server does not take `LOAD DATA LOCAL INFILE` (local_infile off, or not allowed): rows go in as INSERTs. */
export class LocalInfileRefused extends FerryError {
  override readonly name = 'LocalInfileRefused';
  readonly retryable = false;
}

/** A result bigger than the connection can return at once (the Data API's 1 MiB): read fewer rows. */
export class ResultTooLarge extends FerryError {
  override readonly name = 'ResultTooLarge';
  readonly retryable = false;
}

/** A write refused because the document changed since it was read (CouchDB's 409); a DatabaseError to the ASL. */
export class WriteConflict extends DatabaseError {}

/** A range whose rows still differ between source and target after it was copied again. */
export class VerificationFailed extends FerryError {
  override readonly name = 'VerificationFailed';
  readonly retryable = false;
}

/** The blocking check before the cut-over found the copy incomplete. */
export class IncompleteCopy extends FerryError {
  override readonly name = 'IncompleteCopy';
  readonly retryable = false;
}

/** The atomic RENAME could not get its lock in the attempts allowed; the original table is untouched and serving. */
export class SwapFailed extends FerryError {
  override readonly name = 'SwapFailed';
  readonly retryable = false;
}

/** An approver said no. The execution stops; nothing irreversible has happened. */
export class ApprovalRejected extends FerryError {
  override readonly name = 'ApprovalRejected';
  readonly retryable = false;
}

/**
 * The cleanup approval was answered with a revert: the execution carries what the application
 * wrote in the new home back to the old one and sets the cut-over flags back, instead of cleaning up.
 */
export class RevertRequested extends FerryError {
  override readonly name = 'RevertRequested';
  readonly retryable = false;
}

/**
 * A revert that cannot be made, found before anything was flipped (a row the old home cannot
 * hold): what it had put in place is taken back and the cleanup approval is asked for again.
 */
export class RevertRefused extends FerryError {
  override readonly name = 'RevertRefused';
  readonly retryable = false;
}

/** A pending approval was asked for again by a newer execution; the older one no longer waits for it. */
export class ApprovalSuperseded extends FerryError {
  override readonly name = 'ApprovalSuperseded';
  readonly retryable = false;
}

/**
 * A decision was posted for a request that is no longer the one pending (another execution asked
 * again, or the request was asked for anew since the decider looked): nothing was decided.
 */
export class RequestChanged extends FerryError {
  override readonly name = 'RequestChanged';
  readonly retryable = false;
}

/** The checkpoint on the target belongs to a different migration input. */
export class CheckpointConflict extends FerryError {
  override readonly name = 'CheckpointConflict';
  readonly retryable = false;
}

/** Another execution is running this migration: a second one would race it over the same data. */
export class MigrationBusy extends FerryError {
  override readonly name = 'MigrationBusy';
  readonly retryable = false;
}

/** Another execution took the migration over while this one still ran a task: it stops, writing nothing more. */
export class OwnershipLost extends FerryError {
  override readonly name = 'OwnershipLost';
  readonly retryable = false;
}

/** Names of errors that mean "nothing was written, the input was refused". */
export const REFUSAL_ERRORS: readonly string[] = ['InvalidInput', 'CheckpointConflict', 'MigrationBusy'];
