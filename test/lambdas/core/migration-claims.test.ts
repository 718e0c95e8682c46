import { describe, expect, it } from 'vitest';
import { claimMigrationId, describeBinding, refuseIfClaimedElsewhere, sameBinding } from '../../../lambdas/core/migration-claims.ts';
import type { MigrationClaim, MigrationClaims } from '../../../lambdas/core/ports/claims.ts';
import { tableCopyBindingOf, tableCopyInputSchema } from '../../../lambdas/core/table-copy-input.ts';
import { doctypeBindingOf, doctypeCopyInputSchema } from '../../../lambdas/core/doctype-copy-input.ts';
import { alterBindingOf, onlineAlterInputSchema } from '../../../lambdas/core/online-alter-input.ts';

/** The port in memory: the first claim of an id holds it. */
function memory(): MigrationClaims & { held: Map<string, MigrationClaim> } {
  const held = new Map<string, MigrationClaim>();
  return {
    held,
    async claim(id, c) {
      if (!held.has(id)) held.set(id, c);
      return held.get(id)!;
    },
    async ownerOf(id) {
      return held.get(id) ?? null;
    },
  };
}

const copy = (target: string, more: Record<string, unknown> = {}) =>
  tableCopyInputSchema.parse({
    migrationId: 'm1',
    source: { connection: 'csmh', database: 'edxapp', table: 'history' },
    target: { connection: 'target', database: 'edxapp_history', table: target },
    ...more,
  });

describe('migration id claims', () => {
  it('bind table-copy to its two tables only: knobs, chunk, throttle and cleanup settings are no part of it', () => {
    const a = tableCopyBindingOf(copy('history_ext'));
    expect(sameBinding(a, tableCopyBindingOf(copy('history_ext', { chunk: { targetMillis: 50 }, throttle: { maxThreadsRunning: 3 }, partitions: 4 })))).toBe(true);
    expect(sameBinding(a, tableCopyBindingOf(copy('other')))).toBe(false);
    expect(describeBinding(a)).toBe('table-copy of csmh.edxapp.history → target.edxapp_history.history_ext');
  });

  it('bind doctype-copy to both databases and its doc types in any order; online-alter to its table', () => {
    const doc = (types: string[]) => doctypeBindingOf(doctypeCopyInputSchema.parse({ migrationId: 'd', source: { connection: 'main', database: 'commcarehq' }, target: { connection: 'main', database: 'users' }, docTypes: types }));
    expect(sameBinding(doc(['WebUser', 'CommCareUser']), doc(['CommCareUser', 'WebUser']))).toBe(true);
    expect(sameBinding(doc(['WebUser']), doc(['CommCareUser', 'WebUser']))).toBe(false);
    expect(describeBinding(doc(['WebUser', 'CommCareUser']))).toBe('doctype-copy of CommCareUser, WebUser from main:commcarehq → main:users');
    const alter = alterBindingOf(onlineAlterInputSchema.parse({ migrationId: 'a', table: { connection: 'edxapp', database: 'edxapp', table: 'csm' }, alter: 'MODIFY id bigint' }));
    expect(describeBinding(alter)).toBe('online-alter of edxapp.edxapp.csm');
    expect(sameBinding(alter, { ...alter, machine: 'table-copy' })).toBe(false);
  });

  it('claim an id once; the same binding passes again, another is refused naming the owner, and the read-only check says the same', async () => {
    const claims = memory();
    const mine = tableCopyBindingOf(copy('history_ext'));
    await claimMigrationId('m1', mine, 'arn:exec:1', claims, () => Date.parse('2026-05-01T10:00:00Z'));
    await claimMigrationId('m1', mine, 'arn:exec:2', claims, Date.now);
    expect(claims.held.get('m1')).toEqual({ binding: mine, claimedAt: '2026-05-01T10:00:00.000Z', execution: 'arn:exec:1' });
    await refuseIfClaimedElsewhere('m1', mine, claims);
    const message = 'migrationId: migration id m1 belongs to table-copy of csmh.edxapp.history → target.edxapp_history.history_ext (claimed 2026-05-01T10:00:00.000Z by arn:exec:1); choose another migrationId';
    const theirs = tableCopyBindingOf(copy('other'));
    await expect(claimMigrationId('m1', theirs, 'arn:exec:3', claims, Date.now)).rejects.toMatchObject({ name: 'InvalidInput', field: 'migrationId', message });
    await expect(refuseIfClaimedElsewhere('m1', theirs, claims)).rejects.toMatchObject({ name: 'InvalidInput', message });
    await refuseIfClaimedElsewhere('m2', theirs, claims);
    expect(claims.held.has('m2')).toBe(false);
  });
});
