import { describe, expect, it } from 'vitest';
import { claimOwnership } from '../../../lambdas/core/ownership.ts';

const running = (ids: string[]) => async (id: string) => ids.includes(id);

describe('claimOwnership', () => {
  it('takes a migration nobody owns, or that it owns', async () => {
    await expect(claimOwnership('m', null, 'e2', undefined, running(['e1']))).resolves.toBeUndefined();
    await expect(claimOwnership('m', 'e2', 'e2', undefined, running(['e2']))).resolves.toBeUndefined();
  });

  it('takes over from the execution that handed over to it, even while that one is finishing', async () => {
    await expect(claimOwnership('m', 'e1', 'e2', 'e1', running(['e1']))).resolves.toBeUndefined();
  });

  it('takes over from an owner that no longer runs (failed, stopped, killed)', async () => {
    await expect(claimOwnership('m', 'e1', 'e2', undefined, running([]))).resolves.toBeUndefined();
  });

  it('refuses a second execution while the owner runs, naming it', async () => {
    await expect(claimOwnership('m', 'e1', 'e2', undefined, running(['e1']))).rejects.toMatchObject({
      name: 'MigrationBusy',
      message: expect.stringContaining('execution e1 is running migration "m"'),
    });
    await expect(claimOwnership('m', 'e1', 'e3', 'e2', running(['e1']))).rejects.toMatchObject({ name: 'MigrationBusy' });
  });
});
