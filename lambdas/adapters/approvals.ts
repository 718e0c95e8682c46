import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApprovalRejected, ApprovalSuperseded, RequestChanged, RevertRequested } from '../core/errors.ts';
import type { ApprovalDecider, ApprovalDecision, ApprovalRequest, SeenRequest } from '../core/ports/approvals.ts';
import { processAlive } from './processes.ts';
import { checkApprovalName } from '../core/input-parts.ts';

interface ApprovalRecord extends ApprovalRequest {
  readonly requestedAt: string;
  /** The process of the run that asked (the local runner): a request whose run is gone is not pending. */
  readonly pid?: number;
  readonly decision?: ApprovalDecision;
  /** Set once a waiting run has acted on the decision. */
  readonly consumed?: boolean;
}

/** What a revert's failure says: who asked for it, and why (the execution's record of it). */
export function revertCause(step: string, decision: Pick<ApprovalDecision, 'by' | 'reason'>): string {
  return `revert instead of the ${step}, asked by ${decision.by}: ${decision.reason ?? 'no reason given'}`;
}

/** Whether the pending request is the one a decider saw: the same execution, asked for at the same time when that was seen. */
export function sameRequest(now: { readonly execution: string; readonly requestedAt?: string | null }, seen: SeenRequest): boolean {
  return now.execution === seen.execution && (seen.requestedAt === undefined || seen.requestedAt === (now.requestedAt ?? null));
}

/**
 * Local callback tokens: one file per pending approval under `<state-dir>/approvals/`.
 * The runner writes the request and polls; `ferry approve` writes the decision from another terminal.
 */
export class LocalApprovalStore implements ApprovalDecider {
  private readonly dir: string;
  constructor(stateDir: string) {
    this.dir = join(stateDir, 'approvals');
  }

  /** The request's file; a name that is not a migration id or a step is refused before it reaches the file system. */
  private file(migrationId: string, step: string): string {
    checkApprovalName(migrationId, step);
    return join(this.dir, `${migrationId}.${step}.json`);
  }

  private async write(path: string, record: ApprovalRecord): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(tmp, JSON.stringify(record, null, 2) + '\n');
    await rename(tmp, path);
  }

  private async read(path: string): Promise<ApprovalRecord | null> {
    try {
      return JSON.parse(await readFile(path, 'utf8')) as ApprovalRecord;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  /**
   * Records a pending request of this process's run; one for the same step from an earlier run is
   * replaced, with any decision it was given: a decision applies only to the request it answers.
   */
  async request(req: ApprovalRequest): Promise<void> {
    await this.write(this.file(req.migrationId, req.step), { ...req, requestedAt: new Date().toISOString(), pid: process.pid });
  }

  /** The request of that step, undecided, and whether the run that asked for it is still running; null when there is none. */
  async requestOf(migrationId: string, step: string): Promise<{ readonly record: ApprovalRecord; readonly alive: boolean } | null> {
    const record = await this.read(this.file(migrationId, step));
    if (!record || record.decision) return null;
    return { record, alive: record.pid === undefined || processAlive(record.pid) };
  }

  /** The pending request of that step, in the shape the AWS store gives it; null when none is pending. */
  async pendingRequest(migrationId: string, step: string): Promise<{ execution: string; separateFromStarter: boolean; requestedAt: string | null; machine: string | null } | null> {
    const asked = await this.requestOf(migrationId, step);
    return asked?.alive ? { execution: asked.record.execution, separateFromStarter: false, requestedAt: asked.record.requestedAt, machine: asked.record.machine ?? null } : null;
  }

  /** Requests waiting for a decision whose run is still running. */
  async pending(): Promise<ApprovalRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const records = await Promise.all(names.filter((n) => n.endsWith('.json')).map((n) => this.read(join(this.dir, n))));
    return records.filter((r): r is ApprovalRecord => r !== null && r.decision === undefined && (r.pid === undefined || processAlive(r.pid)));
  }

  /**
   * Completes the pending approval of that step. Returns false when none is pending: never
   * requested, already decided, or asked for by a run that is no longer running (its successor
   * asks again, and only that request can be decided). With `seen`, a request other than the one
   * seen (asked for again since) is not decided: RequestChanged.
   */
  async decide(migrationId: string, step: string, decision: Omit<ApprovalDecision, 'at'>, seen?: SeenRequest): Promise<boolean> {
    const path = this.file(migrationId, step);
    const asked = await this.requestOf(migrationId, step);
    if (!asked?.alive) return false;
    if (seen && !sameRequest(asked.record, seen)) throw new RequestChanged(`the ${step} request of ${migrationId} has changed since it was shown (now ${asked.record.execution}, asked for at ${asked.record.requestedAt})`);
    await this.write(path, { ...asked.record, decision: { ...decision, at: new Date().toISOString() } });
    return true;
  }

  /** Resolves with the decision for this token; throws ApprovalRejected on a rejection, RevertRequested on a revert. */
  async waitFor(req: ApprovalRequest, signal: AbortSignal, pollMillis = 250): Promise<ApprovalDecision> {
    const path = this.file(req.migrationId, req.step);
    for (;;) {
      if (signal.aborted) throw signal.reason ?? new Error('aborted');
      const record = await this.read(path);
      if (record && record.token !== req.token) {
        throw new ApprovalSuperseded(`approval ${req.step} of ${req.migrationId} was asked for again by a newer execution`);
      }
      if (record?.decision) {
        await this.write(path, { ...record, consumed: true });
        if (record.decision.revert) throw new RevertRequested(revertCause(req.step, record.decision));
        if (!record.decision.approved) {
          throw new ApprovalRejected(`${req.step} rejected by ${record.decision.by}: ${record.decision.reason ?? 'no reason given'}`);
        }
        return record.decision;
      }
      await new Promise((r) => setTimeout(r, pollMillis));
    }
  }
}
