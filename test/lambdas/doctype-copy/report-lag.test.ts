import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileMigrationClaims } from '../../../lambdas/adapters/claims.ts';
import { NanoConnector } from '../../../lambdas/adapters/couch.ts';
import { FileFlagStore } from '../../../lambdas/adapters/flags.ts';
import { Mysql2Connector } from '../../../lambdas/adapters/mysql2.ts';
import type { Progress, TaskDeps } from '../../../lambdas/core/ports/task-deps.ts';
import type { StatusKind } from '../../../lambdas/core/ports/status.ts';
import { topOff } from '../../../lambdas/doctype-copy/top-off.ts';
import { startFerry } from '../../helpers/cli.ts';
import { bulk } from '../../helpers/couch.ts';
import { MYSQL_URL } from '../../helpers/db.ts';
import { docScenario } from '../../helpers/doc-scenario.ts';

describe("doctype-copy's top-off beside a pending cleanup approval, on AWS", () => {
  it("reports the old database's lag where the page reads it, once a minute at most, and goes on when the report cannot be written", async () => {
    const sc = await docScenario({ docs: 100 });
    const running = startFerry(['local', 'doctype-copy', '--input', sc.inputFile(), '--state-dir', sc.stateDir, '--approve', 'cutover'], sc.env);
    await running.waitFor(/waiting for approval "cleanup"/, 120_000);
    running.child.kill('SIGKILL');
    await running.done;
    // the application, in the new database since the cut-over
    await bulk(sc.target, [{ _id: 'app-1', doc_type: 'WebUser' }, { _id: 'app-2', doc_type: 'WebUser' }, { _id: 'app-3', doc_type: 'Group' }]);

    const puts: { migrationId: string; kind: StatusKind; text: string }[] = [];
    const lines: Progress[] = [];
    let clock = Date.now();
    const sql = new Mysql2Connector({ MYSQL_URL });
    const deps = (put: (migrationId: string, kind: StatusKind, text: string) => Promise<void>): TaskDeps => ({
      executions: { isRunning: async () => false, handedOver: async () => false },
      sql,
      couch: new NanoConnector(sc.env),
      flags: new FileFlagStore(sc.stateDir),
      knobs: new FileFlagStore(sc.stateDir, 'knobs'),
      claims: new FileMigrationClaims(sc.stateDir),
      budgetMillis: 10_000,
      now: () => clock,
      report: (p) => void lines.push(p),
      status: { put },
    });
    const recording = deps(async (migrationId, kind, text) => void puts.push({ migrationId, kind, text }));
    try {
      const event = { migration: sc.input() };
      expect(await topOff(event as never, recording)).toMatchObject({ done: false });
      expect(puts).toHaveLength(1);
      expect(puts[0]).toMatchObject({ migrationId: sc.migrationId, kind: 'lag' });
      const report = JSON.parse(puts[0]!.text) as { at: string; note: string };
      expect(report.at).toBe(new Date(clock).toISOString());
      const changes = /^old database: (\d+) changes in (\S+) since the cut-over \(seq \d+ → \d+\), not in (\S+);/.exec(report.note);
      expect(changes, report.note).not.toBeNull();
      expect(Number(changes![1])).toBeGreaterThanOrEqual(3);
      expect([changes![2], changes![3]]).toEqual([sc.target, sc.source]);

      // the next poll, seconds later: nothing written; a minute later: written again
      clock += 5_000;
      await topOff(event as never, recording);
      expect(puts).toHaveLength(1);
      clock += 60_000;
      await topOff(event as never, recording);
      expect(puts).toHaveLength(2);

      // SSM refusing the write: said, and the top-off goes on
      clock += 61_000;
      const refused = deps(async () => Promise.reject(Object.assign(new Error('not authorized to perform ssm:PutParameter'), { name: 'AccessDeniedException' })));
      expect(await topOff(event as never, refused)).toMatchObject({ done: false });
      expect(lines.map((l) => l.note)).toContain("the old database's lag could not be reported for the approval page: AccessDeniedException: not authorized to perform ssm:PutParameter");
    } finally {
      await sql.closeAll();
    }
  }, 180_000);
});
