import { describe, expect, it } from 'vitest';
import { LocalApprovalStore } from '../../../lambdas/adapters/approvals.ts';
import { tempDir } from '../../helpers/cli.ts';

const req = { migrationId: 'm', step: 'cutover', token: 't1', execution: 'local:x' };

describe('LocalApprovalStore', () => {
  it('refuses to decide what was never requested', async () => {
    const store = new LocalApprovalStore(tempDir());
    expect(await store.decide('m', 'cutover', { approved: true, by: 'me' })).toBe(false);
  });

  it('completes a pending request once, and the waiting run sees the approval', async () => {
    const store = new LocalApprovalStore(tempDir());
    await store.request(req);
    expect((await store.pending()).map((p) => p.step)).toEqual(['cutover']);
    const waiting = store.waitFor(req, new AbortController().signal, 10);
    expect(await store.decide('m', 'cutover', { approved: true, by: 'ops' })).toBe(true);
    expect(await waiting).toMatchObject({ approved: true, by: 'ops' });
    expect(await store.decide('m', 'cutover', { approved: true, by: 'ops' })).toBe(false);
    expect(await store.pending()).toEqual([]);
  });

  it('turns a rejection into ApprovalRejected with the reason', async () => {
    const store = new LocalApprovalStore(tempDir());
    await store.request(req);
    await store.decide('m', 'cutover', { approved: false, by: 'ops', reason: 'not tonight' });
    await expect(store.waitFor(req, new AbortController().signal, 10)).rejects.toMatchObject({
      name: 'ApprovalRejected',
      message: 'cutover rejected by ops: not tonight',
    });
  });

  it('carries a decision no run has acted on over to the next request, but not one already acted on', async () => {
    const store = new LocalApprovalStore(tempDir());
    await store.request(req);
    await store.decide('m', 'cutover', { approved: true, by: 'ops' });
    // the run that asked died (or handed over) before reading the decision
    await store.request({ ...req, token: 't2' });
    expect(await store.waitFor({ ...req, token: 't2' }, new AbortController().signal, 10)).toMatchObject({ approved: true, by: 'ops' });
    await store.request({ ...req, token: 't3' });
    expect((await store.pending()).map((p) => p.token)).toEqual(['t3']);
  });

  it('a request from a newer run supersedes the old token', async () => {
    const store = new LocalApprovalStore(tempDir());
    await store.request(req);
    await store.request({ ...req, token: 't2' });
    await expect(store.waitFor(req, new AbortController().signal, 10)).rejects.toMatchObject({ name: 'ApprovalSuperseded', message: expect.stringContaining('asked for again by a newer execution') });
  });
});
