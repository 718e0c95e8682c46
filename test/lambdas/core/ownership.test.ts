import { describe, expect, it } from 'vitest';
import { claimOwnership } from '../../../lambdas/core/ownership.ts';
import type { ExecutionRegistry } from '../../../lambdas/core/ports/task-deps.ts';

/** Executions `running` run; `handovers` are the continue-as-new starts their histories show. */
const registry = (running: string[], handovers: [string, string][] = []): ExecutionRegistry => ({
  isRunning: async (id) => running.includes(id),
  handedOver: async (from, to) => handovers.some(([f, t]) => f === from && t === to),
});

describe('claimOwnership', () => {
  it('takes a migration nobody owns, or that it owns', async () => {
    await expect(claimOwnership('m', null, 'e2', undefined, registry(['e1']))).resolves.toBeUndefined();
    await expect(claimOwnership('m', 'e2', 'e2', undefined, registry(['e2']))).resolves.toBeUndefined();
  });

  it('takes over from the execution that really started it to continue, even while that one is finishing', async () => {
    await expect(claimOwnership('m', 'e1', 'e2', 'e1', registry(['e1'], [['e1', 'e2']]))).resolves.toBeUndefined();
  });

  it('does not take a running execution’s migration because an input claims a hand-over', async () => {
    // e1 runs and never started e3: the handedOverBy typed into e3's input proves nothing
    await expect(claimOwnership('m', 'e1', 'e3', 'e1', registry(['e1'], [['e1', 'e2']]))).rejects.toMatchObject({
      name: 'TransientError',
      message: expect.stringContaining('does not show it starting e3'),
    });
  });

  it('takes over from an owner that no longer runs (failed, stopped, killed)', async () => {
    await expect(claimOwnership('m', 'e1', 'e2', undefined, registry([]))).resolves.toBeUndefined();
  });

  it('refuses a second execution while the owner runs, naming it', async () => {
    await expect(claimOwnership('m', 'e1', 'e2', undefined, registry(['e1']))).rejects.toMatchObject({
      name: 'MigrationBusy',
      message: expect.stringContaining('execution e1 is running migration "m"'),
    });
    await expect(claimOwnership('m', 'e1', 'e3', 'e2', registry(['e1']))).rejects.toMatchObject({ name: 'MigrationBusy' });
  });
});
