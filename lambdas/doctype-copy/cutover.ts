import type { TaskDeps } from '../core/ports/task-deps.ts';
import { flagValues } from '../core/ports/flags.ts';
import { docLoopState, openDocMigration, reportDoc, saveDoc, type DocLoopState, type DocTaskEvent } from './open-doc-migration.ts';

/** After the cutover approval: the flags of phase `cutover` (e.g. USERS_GROUPS_DB), while the top-off goes on. */
export async function setCutoverFlags(event: DocTaskEvent, deps: TaskDeps): Promise<DocLoopState> {
  const m = await openDocMigration(event, deps);
  const values = m.input.flags.cutover;
  // What a revert sets back, and where the application's writes to the target begin: recorded
  // once, before the flags change (a retry after the flip must not take the new values for the old).
  if (!m.state.flagsBefore) {
    const before = await flagValues(deps.flags, m.input.migrationId, Object.keys(values));
    const seq = (await m.target.info())?.updateSeq ?? '0';
    await saveDoc(m, (s) => {
      s.flagsBefore ??= before;
      s.targetSeqAtCutover ??= String(seq);
    });
  }
  await deps.flags.set(m.input.migrationId, values);
  await saveDoc(m, (_s, phase) => (phase === 'cutover-approval' ? 'cleanup-approval' : phase));
  reportDoc(m, `flags of phase cutover set: ${Object.entries(values).map(([k, v]) => `${k}=${v}`).join(', ') || '(none)'}`);
  return docLoopState(m, { done: true });
}

/**
 * After the cleanup approval: records that the cleanup began. From here on no top-off runs for
 * this migration (it would copy the cleanup's deletions into the target); the top-off task beside
 * this one sees it and stops, and the state machine goes on only when both have finished.
 */
export async function stopTopOff(event: DocTaskEvent, deps: TaskDeps): Promise<DocLoopState> {
  const m = await openDocMigration(event, deps);
  await saveDoc(m, (_s, phase) => (phase === 'cleanup-approval' ? 'cleanup' : phase));
  reportDoc(m, 'cleanup approved: top-off stopped for good');
  return docLoopState(m, { done: true, stopped: true });
}
