/** The doc types a migration moves: each one named, and its `-Deleted` twin (CommCare's soft delete). */
export function wantedDocTypes(docTypes: readonly string[]): string[] {
  const out = new Set<string>();
  for (const t of docTypes) {
    out.add(t);
    out.add(t.endsWith('-Deleted') ? t : `${t}-Deleted`);
  }
  return [...out].sort();
}

/** Design documents and local documents are never migrated. */
export function isDataDocId(id: string): boolean {
  return !id.startsWith('_design/') && !id.startsWith('_local/');
}

export type DocTypeCounts = Readonly<Record<string, number>>;

export interface CountComparison {
  readonly docType: string;
  readonly source: number;
  readonly target: number;
}

/** Per-type counts side by side, every wanted type listed even when neither side has it. */
export function compareCounts(wanted: readonly string[], source: DocTypeCounts, target: DocTypeCounts): CountComparison[] {
  return wanted.map((docType) => ({ docType, source: source[docType] ?? 0, target: target[docType] ?? 0 }));
}

export function formatCounts(rows: readonly CountComparison[]): string {
  const width = Math.max(8, ...rows.map((r) => r.docType.length));
  const lines = [`${'doc_type'.padEnd(width)}  ${'source'.padStart(9)}  ${'target'.padStart(9)}`];
  for (const r of rows) {
    lines.push(`${r.docType.padEnd(width)}  ${String(r.source).padStart(9)}  ${String(r.target).padStart(9)}${r.source === r.target ? '' : '  ≠'}`);
  }
  return lines.join('\n');
}
