/** What an approval task asks for. */
export interface ApprovalRequest {
  readonly migrationId: string;
  readonly step: string;
  /** The callback token: `$$.Task.Token` on AWS, made up by the local runner locally. */
  readonly token: string;
  readonly execution: string;
  /** What the approver should look at before saying yes. */
  readonly summary?: unknown;
  /** The machine asking (`doctype-copy`, …): what a decision may be depends on it (a revert). */
  readonly machine?: string;
}

/** The machines whose cleanup approval may be answered with a revert (`ferry revert`). */
export const REVERTIBLE_MACHINES: readonly string[] = ['table-copy', 'doctype-copy', 'online-alter'];

export interface ApprovalDecision {
  readonly approved: boolean;
  /** Not approved: revert instead (the cleanup approval of a machine that can, see REVERTIBLE_MACHINES). */
  readonly revert?: boolean;
  readonly by: string;
  readonly reason?: string;
  readonly at: string;
}

/** The request a decider looked at: the execution that asked and when it asked (as the request records it). */
export interface SeenRequest {
  readonly execution: string;
  readonly requestedAt?: string | null;
}

/** Completing approvals: the approver's side of the port, locally through the state dir, on AWS through Step Functions. */
export interface ApprovalDecider {
  /**
   * Completes the pending approval of that step; false when none is pending. With `seen`, only
   * when the pending request is that one: otherwise RequestChanged, and nothing is decided.
   */
  decide(migrationId: string, step: string, decision: Omit<ApprovalDecision, 'at'>, seen?: SeenRequest): Promise<boolean>;
  /** What is waiting for a decision. */
  pending(): Promise<readonly { readonly migrationId: string; readonly step: string }[]>;
}
