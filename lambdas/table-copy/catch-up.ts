import type { TaskDeps } from '../core/ports/task-deps.ts';
import { compareIds } from '../core/ids.ts';
import { highestKey, idBounds, keyOf } from '../core/tables/copier.ts';
import { passOverSpans } from '../core/tables/key-spans.ts';
import { spanRange } from '../core/tables/ledger.ts';
import { freshReverify, noteLook } from '../core/tables/reverify-record.ts';
import { byKey, copyUntil, keyLedgerOf, loopState, notice, openMigration, outcomeState, report, save, type LoopState, type Migration, type TaskEvent } from './open-migration.ts';

/**
 * Copies the rows written to the source since the initial copy began, until the source has been
 * quiet for `catchUp.quietSeconds`: applications pick up the "write new" flag late, so the old
 * table keeps receiving rows for a while.
 */
export async function catchUp(event: TaskEvent, deps: TaskDeps): Promise<LoopState> {
  const m = await openMigration(event, deps);
  if (byKey(m)) return catchUpByKey(m);
  const s = m.state;
  const { max } = await idBounds(m.source, m.input.source, m.tables.idColumn);
  if (max !== null && (s.copiedUpTo === null || compareIds(max, s.copiedUpTo) > 0)) {
    const outcome = await copyUntil(m, max, {
      onRows: (inserted) => {
        if (inserted > 0) s.quietSince = new Date(deps.now()).toISOString();
      },
    });
    if (outcome.kind !== 'caught-up') return outcomeState(m, outcome);
    await save(m);
  }
  const quietFor = (deps.now() - Date.parse(s.quietSince ?? new Date(deps.now()).toISOString())) / 1000;
  const quietSeconds = m.input.catchUp.quietSeconds;
  if (quietFor >= quietSeconds) {
    await save(m, 'verify');
    report(m, `source quiet for ${Math.floor(quietFor)} s: caught up at id ${s.copiedUpTo ?? '(none)'}`);
    return loopState(m, { done: true });
  }
  await sayWhatStillArrives(m);
  report(m, `caught up at id ${s.copiedUpTo ?? '(none)'}; waiting for ${quietSeconds} s without new source rows (${Math.floor(quietFor)} s so far)`);
  const untilQuiet = Math.max(1, Math.ceil(quietSeconds - quietFor));
  return loopState(m, { done: false, waitSeconds: Math.min(m.input.catchUp.pollSeconds, untilQuiet) });
}

/**
 * The catch-up of a migration copied by another key than one integer id, whose rows may arrive
 * anywhere (see key-spans.ts): copies what lies above the keys copied, then looks at every span
 * verified again and copies the rows that arrived in it. Ends after a whole pass that found none,
 * once nothing has needed copying for `catchUp.quietSeconds`.
 */
async function catchUpByKey(m: Migration): Promise<LoopState> {
  const s = m.state;
  const deps = m.deps;
  const top = await highestKey(m.source, [m.input.source], keyOf(m.tables));
  if (top !== null && top !== s.copiedUpTo) {
    const outcome = await copyUntil(m, top, {
      onRows: (inserted) => {
        if (inserted > 0) s.quietSince = new Date(deps.now()).toISOString();
      },
    });
    if (outcome.kind !== 'caught-up') return outcomeState(m, outcome);
  }
  const pass = (s.keyPass ??= { cursor: null, found: 0 });
  const outcome = await passOverSpans(m, keyLedgerOf(m), 'before', pass.cursor, (span, late, look) => {
    pass.cursor = span.seq;
    pass.found += late;
    s.rowsCopied = (BigInt(s.rowsCopied) + BigInt(late)).toString();
    // A difference is kept where the re-verification keeps its own: the cut-over is refused while it remains (see reverify.ts).
    const difference = look.kind === 'looked' ? look.difference : null;
    if (noteLook((s.reverify ??= freshReverify()), spanRange(span), difference, deps.now()) && difference) notice(m, `${difference}: the cut-over is refused until ${m.input.target.table} holds them as they are now`);
  });
  if (outcome !== null) return outcomeState(m, outcome);
  const found = pass.found;
  s.keyPass = null;
  const quietFor = (deps.now() - Date.parse(s.quietSince ?? new Date(deps.now()).toISOString())) / 1000;
  const quietSeconds = m.input.catchUp.quietSeconds;
  if (found === 0 && quietFor >= quietSeconds) {
    await save(m, 'verify');
    report(m, `source quiet for ${Math.floor(quietFor)} s: a whole pass over the keys copied found nothing new`);
    return loopState(m, { done: true });
  }
  await save(m);
  await sayWhatStillArrives(m);
  report(m, `looked at every key range copied (${found} rows arrived since and were copied); waiting for ${quietSeconds} s without new source rows (${Math.floor(quietFor)} s so far)`);
  return loopState(m, { done: false, waitSeconds: Math.max(1, Math.min(m.input.catchUp.pollSeconds, Math.ceil(quietSeconds - quietFor))) });
}

/** How often (seconds, at least) a catch-up that is not getting quiet says how many rows still arrive. */
export const ARRIVALS_NOTICE_SECONDS = 20;

/**
 * A catch-up that does not get quiet says why, every max(20 s, 4 × quietSeconds): how many rows the
 * old table received since it last said so, and what to look at, since the catch-up ends only once
 * the application writes the new table.
 */
async function sayWhatStillArrives(m: Migration): Promise<void> {
  const s = m.state;
  const now = m.deps.now();
  const every = Math.max(ARRIVALS_NOTICE_SECONDS, 4 * m.input.catchUp.quietSeconds) * 1000;
  if (!s.arrivals) {
    s.arrivals = { since: new Date(now).toISOString(), rowsCopied: s.rowsCopied };
    await save(m);
    return;
  }
  const elapsed = now - Date.parse(s.arrivals.since);
  if (elapsed < every) return;
  const rows = BigInt(s.rowsCopied) - BigInt(s.arrivals.rowsCopied);
  s.arrivals = { since: new Date(now).toISOString(), rowsCopied: s.rowsCopied };
  await save(m);
  if (rows <= 0n) return;
  const waited = Math.round((now - Date.parse(s.phaseStartedAt['catch-up'] ?? new Date(now).toISOString())) / 1000);
  const flags = Object.entries(m.input.flags.copy).map(([k, v]) => `${k}=${v}`).join(', ');
  notice(
    m,
    `the old table still receives rows: ${rows} in the last ${Math.round(elapsed / 1000)} s, and the catch-up has waited ${waited} s for ${m.input.catchUp.quietSeconds} s without one. ` +
      `It ends only once the application writes the new table: is every server honouring the copy flags${flags ? ` (${flags})` : ''}? ferry flags ${m.input.migrationId} shows them`,
  );
}
