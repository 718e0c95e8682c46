import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** A machine's ASL file, resolved from this module, never from the working directory. */
export function aslPath(machine: string): string {
  return fileURLToPath(new URL(`./${machine}.asl.json`, import.meta.url));
}

export function aslText(machine: string): string {
  return readFileSync(aslPath(machine), 'utf8');
}

/** The `${<name>FunctionArn}` placeholders a definition uses, by name. */
export function functionPlaceholders(definition: string): string[] {
  return [...new Set([...definition.matchAll(/\$\{(\w+)FunctionArn\}/g)].map((m) => m[1]!))].sort();
}
