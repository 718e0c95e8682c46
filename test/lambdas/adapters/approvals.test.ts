import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

  it('applies a decision only to the request it answers: a new request does not take one given to an earlier one', async () => {
    const store = new LocalApprovalStore(tempDir());
    await store.request(req);
    await store.decide('m', 'cutover', { approved: true, by: 'ops' });
    // the run that asked died before reading the decision; the next run asks again, and waits for a decision of its own
    await store.request({ ...req, token: 't2' });
    expect((await store.pending()).map((p) => p.token)).toEqual(['t2']);
    const stop = new AbortController();
    const waiting = store.waitFor({ ...req, token: 't2' }, stop.signal, 10);
    const early = await Promise.race([waiting.then(() => 'decided', () => 'failed'), new Promise((r) => setTimeout(() => r('still waiting'), 100))]);
    expect(early).toBe('still waiting');
    expect(await store.decide('m', 'cutover', { approved: true, by: 'ops, again' })).toBe(true);
    expect(await waiting).toMatchObject({ approved: true, by: 'ops, again' });
  });

  it('a request whose run is no longer running is not pending, and cannot be decided', async () => {
    const dir = tempDir();
    const store = new LocalApprovalStore(dir);
    await store.request(req);
    // the run that asked is gone: a process that has already exited
    const gone = spawnSync(process.execPath, ['-e', '0']).pid;
    const path = join(dir, 'approvals', 'm.cutover.json');
    writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), pid: gone }));
    expect(await store.pending()).toEqual([]);
    expect(await store.requestOf('m', 'cutover')).toMatchObject({ alive: false, record: { pid: gone } });
    expect(await store.decide('m', 'cutover', { approved: true, by: 'ops' })).toBe(false);
    expect(JSON.parse(readFileSync(path, 'utf8')).decision).toBeUndefined();
  });

  it('a request from a newer run supersedes the old token', async () => {
    const store = new LocalApprovalStore(tempDir());
    await store.request(req);
    await store.request({ ...req, token: 't2' });
    await expect(store.waitFor(req, new AbortController().signal, 10)).rejects.toMatchObject({ name: 'ApprovalSuperseded', message: expect.stringContaining('asked for again by a newer execution') });
  });
});

describe('approval names that would name a file elsewhere', () => {
  it.each([
    ['../../outside', 'cutover', /migrationId: must be 1-80 letters, digits, _ or -/],
    ['m', '../../outside', /step: must be "cutover" or "cleanup"/],
    ['m/..', 'cutover', /migrationId/],
  ])('the local store refuses %s / %s before it touches a file', async (migrationId, step, message) => {
    const dir = tempDir();
    const store = new LocalApprovalStore(join(dir, 'state'));
    await expect(store.request({ migrationId, step, token: 't', execution: 'local:x' })).rejects.toThrow(message);
    await expect(store.decide(migrationId, step, { approved: true, by: 'me' })).rejects.toThrow(message);
    await expect(store.requestOf(migrationId, step)).rejects.toThrow(message);
    expect(spawnSync('find', [dir, '-type', 'f']).stdout.toString()).toBe('');
  });

  it('ferry approve refuses such a name with exit 2, naming the field, and writes nothing', () => {
    const dir = tempDir();
    const run = spawnSync(process.execPath, [join(import.meta.dirname, '../../../bin/ferry.js'), 'approve', '../../outside', '--step', 'cutover', '--state-dir', join(dir, 'state')], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/migrationId: must be 1-80 letters, digits, _ or -/);
    expect(spawnSync('find', [dir, '-type', 'f']).stdout.toString()).toBe('');
  });
});
