import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runFerry } from '../helpers/cli.ts';
import { scenario, type Scenario } from '../helpers/scenario.ts';

const SECRET = 'hunter2-s3cret-value';

/**
 * The input refuses INTO (OUTFILE, DUMPFILE, variables) in throttle.query, but only between ASCII
 * word boundaries: the server ends a number literal where its digits end, so `1.0INTO` is a number
 * and then INTO. The query runs read-only, yet a file write is no transaction's.
 */
describe('throttle.query: INTO right after a number', () => {
  let sc: Scenario | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await sc?.close();
    sc = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('ferry plan refuses it before anything runs, and no file is written on the database server', async () => {
    sc = await scenario({ rows: 10 });
    await sc.conn.query(`CREATE TABLE \`${sc.src}\`.secrets (pw varchar(64))`);
    await sc.conn.query(`INSERT INTO \`${sc.src}\`.secrets VALUES (?)`, [SECRET]);
    // a directory the server may write into, and this test may clean up
    dir = mkdtempSync(join(tmpdir(), 'ferry-t-throttle-'));
    chmodSync(dir, 0o777);
    const leak = join(dir, 'leak');
    const query = `SELECT pw FROM \`${sc.src}\`.secrets WHERE 1=1.0INTO OUTFILE '${leak}'`;
    const planned = await runFerry(['plan', 'table-copy', '--input', sc.inputFile({ throttle: { waitSeconds: 1, query } }), '--json']);
    const written = existsSync(leak) ? readFileSync(leak, 'utf8') : null;
    expect({ code: planned.code, written }).toEqual({ code: 2, written: null });
    expect(planned.stdout + planned.stderr).toMatch(/throttle\.query: .*INTO/);
  });
});
