import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApprovalRejected, ApprovalSuperseded } from '../core/errors.ts';
import type { ApprovalDecider, ApprovalDecision, ApprovalRequest } from '../core/ports/approvals.ts';

interface ApprovalRecord extends ApprovalRequest {
  readonly requestedAt: string;
  readonly decision?: ApprovalDecision;
  /** Set once a waiting run has acted on the decision. */
  readonly consumed?: boolean;
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

  private file(migrationId: string, step: string): string {
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
   * Records a pending request; one for the same step from an earlier run is replaced. A decision
   * given to the earlier request that no run has acted on yet (the run died, or handed over to a
   * new execution) carries over to this one, so an approver never has to say it twice.
   */
  async request(req: ApprovalRequest): Promise<void> {
    const path = this.file(req.migrationId, req.step);
    const earlier = await this.read(path);
    const carried = earlier?.decision && !earlier.consumed ? { decision: earlier.decision } : {};
    await this.write(path, { ...req, requestedAt: new Date().toISOString(), ...carried });
  }

  async pending(): Promise<ApprovalRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const records = await Promise.all(names.filter((n) => n.endsWith('.json')).map((n) => this.read(join(this.dir, n))));
    return records.filter((r): r is ApprovalRecord => r !== null && r.decision === undefined);
  }

  /**
   * Completes the pending approval of that step. Returns false when none is pending
   * (never requested, or already decided).
   */
  async decide(migrationId: string, step: string, decision: Omit<ApprovalDecision, 'at'>): Promise<boolean> {
    const path = this.file(migrationId, step);
    const record = await this.read(path);
    if (!record || record.decision) return false;
    await this.write(path, { ...record, decision: { ...decision, at: new Date().toISOString() } });
    return true;
  }

  /** Resolves with the decision for this token; throws ApprovalRejected on a rejection. */
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
        if (!record.decision.approved) {
          throw new ApprovalRejected(`${req.step} rejected by ${record.decision.by}: ${record.decision.reason ?? 'no reason given'}`);
        }
        return record.decision;
      }
      await new Promise((r) => setTimeout(r, pollMillis));
    }
  }
}
