/**
 * Reports a task leaves for the approval page and `ferry status --aws`, which read no database:
 * on AWS one String parameter per migration and kind, `<root>/<migrationId>/status/<kind>`.
 * Locally there is no such port: the page and `ferry status` read the databases themselves.
 */
export type StatusKind = 'reverify' | 'lag';

export interface StatusReports {
  put(migrationId: string, kind: StatusKind, text: string): Promise<void>;
}

/** How far the old home trails the new one beside a pending cleanup approval, in words, and when it was read. */
export function lagReportText(at: string, note: string): string {
  return JSON.stringify({ at, note: note.slice(0, 2000) });
}

/** How often a looping task reports the lag: once a minute is as fresh as anyone reads it. */
export const LAG_REPORT_EVERY_MILLIS = 60_000;
