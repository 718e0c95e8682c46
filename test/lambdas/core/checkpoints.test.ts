import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { Mysql2Connector } from '../../../lambdas/adapters/mysql2.ts';
import { canonicalJson, CheckpointStore } from '../../../lambdas/core/checkpoints.ts';
import { admin, makeDatabases, MYSQL_URL } from '../../helpers/db.ts';

describe('CheckpointStore on MariaDB', () => {
  let conn: mysql.Connection;
  let dbs: Awaited<ReturnType<typeof makeDatabases>>;
  const sql = new Mysql2Connector({ MYSQL_URL });
  beforeAll(async () => {
    conn = await admin();
    dbs = await makeDatabases(conn, 'cp');
  });
  afterAll(async () => {
    await sql.closeAll();
    await dbs.drop();
    await conn.end();
  });

  it('reads nothing and writes nothing before the first checkpoint', async () => {
    const store = new CheckpointStore(await sql.connect('x'), dbs.names.cp!, 'table-copy');
    expect(await store.load('m1', { a: 1 })).toBeNull();
    const [tables] = await conn.query('SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?', [dbs.names.cp]);
    expect(tables).toEqual([]);
  });

  it('creates, saves and loads a cursor that survives a new connection', async () => {
    const store = new CheckpointStore<{ copiedUpTo: string }>(await sql.connect('x'), dbs.names.cp!, 'table-copy');
    await store.create('m2', { b: [1, 2], a: 'x' }, 'copy', { copiedUpTo: '18446744073709551615' });
    await store.save('m2', 'verify', { copiedUpTo: '18446744073709551615' });
    const fresh = new Mysql2Connector({ MYSQL_URL });
    const loaded = await new CheckpointStore<{ copiedUpTo: string }>(await fresh.connect('y'), dbs.names.cp!, 'table-copy').load('m2', { a: 'x', b: [1, 2] });
    await fresh.closeAll();
    expect(loaded).toMatchObject({ phase: 'verify', state: { copiedUpTo: '18446744073709551615' } });
  });

  it('refuses a different input for the same migrationId, naming what changed', async () => {
    const store = new CheckpointStore(await sql.connect('x'), dbs.names.cp!, 'table-copy');
    await store.create('m3', { source: 's', idOffset: '0' }, 'copy', {});
    await expect(store.load('m3', { source: 's', idOffset: '1000' })).rejects.toMatchObject({ name: 'CheckpointConflict', message: expect.stringContaining('idOffset') });
    const other = new CheckpointStore(await sql.connect('x'), dbs.names.cp!, 'online-alter');
    await expect(other.load('m3', { source: 's', idOffset: '0' })).rejects.toMatchObject({ name: 'CheckpointConflict', message: expect.stringContaining('machine') });
  });

  it('is fenced: once another execution took the migration over, a task of the old owner can no longer write', async () => {
    const store = new CheckpointStore<{ owner: string; copiedUpTo: string }>(await sql.connect('x'), dbs.names.cp!, 'table-copy');
    await store.create('m4', { a: 1 }, 'copy', { owner: 'exec-old', copiedUpTo: '100' });
    // the new execution takes over from the one it saw owning it
    await store.save('m4', 'copy', { owner: 'exec-new', copiedUpTo: '100' }, 'exec-old');
    await store.save('m4', 'copy', { owner: 'exec-new', copiedUpTo: '200' });
    // a Lambda of the old execution, still finishing a chunk, tries to move the cursor
    await expect(store.save('m4', 'verify', { owner: 'exec-old', copiedUpTo: '150' })).rejects.toMatchObject({ name: 'OwnershipLost', message: expect.stringContaining('exec-new') });
    // and two executions cannot both take over from the same owner
    await expect(store.save('m4', 'copy', { owner: 'exec-third', copiedUpTo: '100' }, 'exec-old')).rejects.toMatchObject({ name: 'OwnershipLost' });
    expect(await store.load('m4', { a: 1 })).toMatchObject({ phase: 'copy', state: { owner: 'exec-new', copiedUpTo: '200' } });
  });

  it('serializes identities canonically', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { f: 1, e: 0 }], c: null } })).toBe('{"a":{"c":null,"d":[2,{"e":0,"f":1}]},"b":1}');
  });
});
