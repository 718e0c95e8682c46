import { statfs } from 'node:fs/promises';
import { FileMigrationClaims } from '../../lambdas/adapters/claims.ts';
import { FileFlagStore } from '../../lambdas/adapters/flags.ts';
import { Mysql2Connector } from '../../lambdas/adapters/mysql2.ts';
import { NanoConnector } from '../../lambdas/adapters/couch.ts';
import { parseInput } from '../../lambdas/core/input-parts.ts';
import { withKnobs } from '../../lambdas/core/knobs.ts';
import { INPUT_SCHEMAS, type MachineName } from '../../lambdas/core/machine-inputs.ts';
import type { Plan, PlanDeps, PlanKnobs } from '../../lambdas/core/plan.ts';
import { scalar, type SqlConnection } from '../../lambdas/core/ports/sql.ts';
import type { TableCopyInput } from '../../lambdas/core/table-copy-input.ts';
import type { OnlineAlterInput } from '../../lambdas/core/online-alter-input.ts';
import type { DoctypeCopyInput } from '../../lambdas/core/doctype-copy-input.ts';
import { planTableCopy } from '../../lambdas/table-copy/plan.ts';
import { planOnlineAlter } from '../../lambdas/online-alter/plan.ts';
import { planDoctypeCopy } from '../../lambdas/doctype-copy/plan.ts';
import { runLockHolder } from './run-lock.ts';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/**
 * Free bytes on the disk of a server that runs on this machine (its address is a loopback one):
 * the file system that holds its data directory. Null for any other server.
 */
async function localFreeDisk(conn: SqlConnection): Promise<{ bytes: string; where: string } | null> {
  const host = conn.serverKey.replace(/:\d+$/, '');
  if (!LOOPBACK.has(host)) return null;
  const datadir = await scalar(conn, 'SELECT @@datadir').catch(() => null);
  if (!datadir) return null;
  try {
    const fs = await statfs(datadir);
    return { bytes: (BigInt(fs.bavail) * BigInt(fs.bsize)).toString(), where: `the file system of ${datadir} ("${conn.name}" runs on this machine)` };
  } catch {
    return null;
  }
}

/**
 * `ferry plan <machine> --input FILE` locally: the input validated by the machine's schema (with
 * the migration's live knobs from the state dir put in), every Preflight check run against the
 * databases the connection names resolve to, and the plan. Writes nothing.
 */
export async function planLocal(machine: MachineName, raw: unknown, stateDir: string, env: NodeJS.ProcessEnv): Promise<Plan> {
  const schema = INPUT_SCHEMAS[machine];
  const parsed = parseInput(schema, raw);
  const tuned = withKnobs(schema, parsed, await new FileFlagStore(stateDir, 'knobs').list(parsed.migrationId));
  const knobs: PlanKnobs = { inForce: tuned.inForce, ignored: tuned.ignored };
  const sql = new Mysql2Connector(env);
  const flags = new FileFlagStore(stateDir);
  const deps: PlanDeps = { sql, couch: new NanoConnector(env), flags, claims: new FileMigrationClaims(stateDir), freeDiskBytes: localFreeDisk, now: Date.now };
  try {
    const plan =
      machine === 'table-copy' ? await planTableCopy(tuned.input as TableCopyInput, deps, knobs)
      : machine === 'online-alter' ? await planOnlineAlter(tuned.input as OnlineAlterInput, deps, knobs)
      : await planDoctypeCopy(tuned.input as DoctypeCopyInput, deps, knobs);
    const warnings = [...plan.warnings];
    const holder = runLockHolder(stateDir, parsed.migrationId);
    if (holder) warnings.unshift(`a ferry local run of "${parsed.migrationId}" is running now (pid ${holder}) with state dir ${stateDir}: another would be refused until it ends`);
    return { ...plan, warnings };
  } finally {
    await sql.closeAll();
  }
}
