import { BadRequestException, BeginTransactionCommand, CommitTransactionCommand, DatabaseResumingException, ExecuteStatementCommand, RollbackTransactionCommand, RDSDataClient, StatementTimeoutException } from '@aws-sdk/client-rds-data';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { DataApiConnection, namedPlaceholders } from '../../../lambdas/adapters/data-api.ts';
import type { SqlConnection } from '../../../lambdas/core/ports/sql.ts';
import { copyRange } from '../../../lambdas/core/tables/copier.ts';
import { DatabaseError, TransientError } from '../../../lambdas/core/errors.ts';
import { runThrottleQuery } from '../../../lambdas/core/throttle-query.ts';

const rds = mockClient(RDSDataClient);
const cluster = { clusterArn: 'arn:aws:rds:eu-west-1:123456789012:cluster:a', secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:a-AbCdEf' };
// compile-time check: the Data API adapter is a SqlConnection like mysql2's
const port: SqlConnection = new DataApiConnection('csmh', cluster, new RDSDataClient({ region: 'eu-west-1' }));

describe('DataApiConnection', () => {
  beforeEach(() => rds.reset());

  it('asks for BIGINTs as strings, so 18446744073709551615 survives exactly', async () => {
    rds.on(ExecuteStatementCommand).resolves({
      columnMetadata: [{ label: 'id' }, { label: 'grade' }, { label: 'state' }],
      records: [[{ stringValue: '18446744073709551615' }, { doubleValue: 0.1 }, { isNull: true }]],
    });
    const rows = await port.query('SELECT id, grade, state FROM `d`.`t` WHERE id > ?', ['18446744073709551614']);
    expect(rows).toEqual([{ id: '18446744073709551615', grade: '0.1', state: null }]);
    const input = rds.commandCalls(ExecuteStatementCommand)[0]!.args[0].input;
    expect(input).toMatchObject({
      resourceArn: cluster.clusterArn,
      secretArn: cluster.secretArn,
      sql: 'SELECT id, grade, state FROM `d`.`t` WHERE id > :p0',
      parameters: [{ name: 'p0', value: { stringValue: '18446744073709551614' } }],
      resultSetOptions: { longReturnType: 'STRING', decimalReturnType: 'STRING' },
    });
  });

  it('runs the statements of a transaction under its id, commits it, and rolls it back when the body throws', async () => {
    rds.on(BeginTransactionCommand).resolvesOnce({ transactionId: 'tx-1' }).resolvesOnce({ transactionId: 'tx-2' });
    rds.on(ExecuteStatementCommand).resolves({ numberOfRecordsUpdated: 1 });
    rds.on(CommitTransactionCommand).resolves({ transactionStatus: 'Transaction Committed' });
    rds.on(RollbackTransactionCommand).resolves({ transactionStatus: 'Rollback Complete' });
    await port.transaction(async (tx) => {
      await tx.execute('INSERT INTO t (id) VALUES (?)', ['1']);
      await tx.execute('INSERT INTO ledger (lo) VALUES (?)', ['1']);
    });
    expect(rds.commandCalls(ExecuteStatementCommand).map((c) => c.args[0].input.transactionId)).toEqual(['tx-1', 'tx-1']);
    expect(rds.commandCalls(CommitTransactionCommand).map((c) => c.args[0].input)).toEqual([{ resourceArn: cluster.clusterArn, secretArn: cluster.secretArn, transactionId: 'tx-1' }]);
    await expect(
      port.transaction(async (tx) => {
        await tx.execute('INSERT INTO t (id) VALUES (?)', ['2']);
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    expect(rds.commandCalls(RollbackTransactionCommand).map((c) => c.args[0].input.transactionId)).toEqual(['tx-2']);
    expect(rds.commandCalls(CommitTransactionCommand)).toHaveLength(1);
    // a statement outside any transaction carries no id
    await port.execute('DELETE FROM t WHERE id = ?', ['3']);
    expect(rds.commandCalls(ExecuteStatementCommand).at(-1)!.args[0].input.transactionId).toBeUndefined();
  });

  it('names placeholders outside quoted text only', () => {
    expect(namedPlaceholders("SELECT '?' , `a?` FROM t WHERE a = ? AND b = ?")).toEqual({ sql: "SELECT '?' , `a?` FROM t WHERE a = :p0 AND b = :p1", count: 2 });
  });

  it('maps a waking Aurora and statement timeouts to the retryable TransientError the ASL retries', async () => {
    rds.on(ExecuteStatementCommand).rejectsOnce(new DatabaseResumingException({ message: 'resuming', $metadata: {} })).rejectsOnce(new StatementTimeoutException({ message: 'slow', $metadata: {} }));
    await expect(port.execute('DELETE FROM t WHERE id = ?', [1])).rejects.toMatchObject({ name: 'TransientError', retryable: true });
    await expect(port.execute('DELETE FROM t WHERE id = ?', [1])).rejects.toMatchObject({ name: 'TransientError' });
  });

  it('carries the database error number, so the throttle query names its class without the database text', async () => {
    rds.on(ExecuteStatementCommand)
      // Aurora MySQL has no max_statement_time: it is MySQL
      .rejectsOnce(new BadRequestException({ message: "Database error code: 1193. Message: Unknown system variable 'max_statement_time'", $metadata: {} }))
      .rejectsOnce(new BadRequestException({ message: "Database error code: 1105. Message: XPATH syntax error: ':hunter2'", $metadata: {} }))
      .rejectsOnce(new BadRequestException({ message: 'Database error code: 3024. Message: Query execution was interrupted, maximum statement execution time exceeded', $metadata: {} }));
    const conn = new DataApiConnection('csmh', cluster, new RDSDataClient({ region: 'eu-west-1' }));
    const first = (await runThrottleQuery(conn, 'SELECT ExtractValue(1, 2)').catch((e: unknown) => e)) as DatabaseError;
    expect(first).toBeInstanceOf(DatabaseError);
    expect(first).toMatchObject({ errno: 1105, message: 'the throttle query failed on "csmh": the database refused it while running it (error 1105)' });
    // on Aurora MySQL the time limit is an optimizer hint
    expect(rds.commandCalls(ExecuteStatementCommand)[1]!.args[0].input.sql).toBe('SELECT /*+ MAX_EXECUTION_TIME(2000) */ * FROM (SELECT ExtractValue(1, 2)) AS ferry_throttle LIMIT 1');
    const second = (await runThrottleQuery(conn, 'SELECT 1').catch((e: unknown) => e)) as TransientError;
    expect(second).toBeInstanceOf(TransientError);
    expect(second.message).toMatch(/timed out/);
  });

  it('reads rows between clusters in pages that fit the 1 MiB response cap, halving a page that does not', async () => {
    const source = new DataApiConnection('edxapp', cluster, new RDSDataClient({ region: 'eu-west-1' }));
    const target = new DataApiConnection('csmh', { ...cluster, clusterArn: 'arn:aws:rds:eu-west-1:123456789012:cluster:b' }, new RDSDataClient({ region: 'eu-west-1' }));
    const ids = Array.from({ length: 1700 }, (_, i) => (9007199254740993n + BigInt(i)).toString());
    const inserted: string[] = [];
    const selects: string[] = [];
    rds.on(ExecuteStatementCommand).callsFake((input: { sql: string; parameters: { value: { stringValue?: string } }[] }) => {
      if (input.sql.startsWith('SELECT')) {
        selects.push(input.sql);
        const limit = Number(/LIMIT (\d+)/.exec(input.sql)![1]);
        if (limit > 600) throw new BadRequestException({ message: 'Database returned more than the allowed response size limit', $metadata: {} });
        const from = BigInt(input.parameters[0]!.value.stringValue!);
        const page = ids.filter((id) => BigInt(id) >= from).slice(0, limit);
        return { columnMetadata: [{ label: 'id' }, { label: 'state' }], records: page.map((id) => [{ stringValue: id }, { stringValue: 'x'.repeat(300) }]) };
      }
      const values = input.parameters.map((p) => p.value.stringValue!);
      for (let i = 0; i < values.length; i += 2) inserted.push(values[i]!);
      return { numberOfRecordsUpdated: values.length / 2 };
    });
    const result = await copyRange(
      { source, target, sourceTable: { database: 'edxapp', table: 'h' }, targetTable: { database: 'csmh', table: 'h' }, idColumn: 'id', keyIndex: 'PRIMARY', columns: ['id', 'state'], targetColumns: ['id', 'state'], hash: { source: [], target: [] } },
      { lo: ids[0]!, hi: ids[ids.length - 1]! },
    );
    expect(result.inserted).toBe(1700);
    expect(inserted).toEqual(ids);
    expect(selects.map((sql) => /LIMIT (\d+)/.exec(sql)![1])).toEqual(['1000', '500', '500', '500', '500']);
    // every INSERT stayed under the statement cap
    for (const call of rds.commandCalls(ExecuteStatementCommand)) {
      const input = call.args[0].input;
      if (input.sql!.startsWith('INSERT')) expect(JSON.stringify(input.parameters).length).toBeLessThan(target.maxStatementBytes);
    }
  });
});
