import { InvalidInput } from './errors.ts';
import type { BoundPlace, MigrationBinding, MigrationClaim, MigrationClaims } from './ports/claims.ts';

/**
 * One owner per migration id. Flags, approval tokens, knobs and reports are kept by migration id
 * alone, so two inputs under one id would share them. The first Preflight of an id claims it for
 * what its input moves (see ports/claims.ts); an input that moves something else under the same
 * id is refused, by Preflight and by `ferry plan`, naming the owner. The same binding passes: a
 * resume, a continuation, a re-run with other knobs.
 */

/** The binding as one string, its keys in a fixed order: two bindings are the same when these are. */
function bindingKey(b: MigrationBinding): string {
  const place = (p: BoundPlace | undefined) => (p ? [p.connection, p.database, p.table ?? null] : null);
  return JSON.stringify([b.machine, place(b.source), place(b.target), b.docTypes ? [...b.docTypes].sort() : null]);
}

export function sameBinding(a: MigrationBinding, b: MigrationBinding): boolean {
  return bindingKey(a) === bindingKey(b);
}

/** `edxapp.db.table` for a table, `main:db` for a CouchDB database (whose names may hold a dot, never a colon). */
function placeText(p: BoundPlace): string {
  return p.table === undefined ? `${p.connection}:${p.database}` : `${p.connection}.${p.database}.${p.table}`;
}

/** What a binding moves, in words: "table-copy of edxapp.db.t → csmh.db2.t2". */
export function describeBinding(b: MigrationBinding): string {
  const what = b.docTypes ? `${b.docTypes.join(', ')} from ` : '';
  return `${b.machine} of ${what}${placeText(b.source)}${b.target ? ` → ${placeText(b.target)}` : ''}`;
}

function refusal(migrationId: string, owner: MigrationClaim): InvalidInput {
  return new InvalidInput(
    'migrationId',
    `migration id ${migrationId} belongs to ${describeBinding(owner.binding)} (claimed ${owner.claimedAt} by ${owner.execution}); choose another migrationId`,
  );
}

/** Refuses (InvalidInput) an input whose id another binding holds; reads only (`ferry plan`, Preflight's checks). */
export async function refuseIfClaimedElsewhere(migrationId: string, binding: MigrationBinding, claims: Pick<MigrationClaims, 'ownerOf'>): Promise<void> {
  const owner = await claims.ownerOf(migrationId);
  if (owner && !sameBinding(owner.binding, binding)) throw refusal(migrationId, owner);
}

/**
 * Claims the id for this binding, or finds it claimed for it already; refuses (InvalidInput) when
 * another binding holds it. Preflight's first write: of two inputs racing for one id, one loses
 * here, before it has written anything else.
 */
export async function claimMigrationId(migrationId: string, binding: MigrationBinding, execution: string, claims: MigrationClaims, now: () => number): Promise<void> {
  const owner = await claims.claim(migrationId, { binding, claimedAt: new Date(now()).toISOString(), execution });
  if (!sameBinding(owner.binding, binding)) throw refusal(migrationId, owner);
}

/** A stored claim (a file, a parameter's value) read back; InvalidInput, naming where, when it is not one. */
export function claimFromJson(text: string, where: string): MigrationClaim {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = null;
  }
  const c = parsed as Partial<MigrationClaim> | null;
  const place = (p: unknown) => !!p && typeof p === 'object' && typeof (p as BoundPlace).connection === 'string' && typeof (p as BoundPlace).database === 'string';
  if (!c || typeof c !== 'object' || !c.binding || typeof c.binding.machine !== 'string' || !place(c.binding.source) || (c.binding.target !== undefined && !place(c.binding.target)) || typeof c.claimedAt !== 'string' || typeof c.execution !== 'string') {
    throw new InvalidInput('migrationId', `${where} holds no claim ferry can read; if no migration uses this id, delete it and run again`);
  }
  return c as MigrationClaim;
}
