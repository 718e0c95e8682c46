import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * A machine's ASL file, found from this module upwards (here, or from the compiled command line
 * in dist/), never from the working directory.
 */
export function aslPath(machine: string): string {
  const file = `statemachines/${machine}.asl.json`;
  for (let dir = new URL('.', import.meta.url); ; dir = new URL('..', dir)) {
    const candidate = new URL(file, dir);
    if (existsSync(candidate)) return fileURLToPath(candidate);
    if (dir.pathname === '/') throw new Error(`${file} not found above ${fileURLToPath(import.meta.url)}`);
  }
}

export function aslText(machine: string): string {
  return readFileSync(aslPath(machine), 'utf8');
}

/** The `${<name>FunctionArn}` placeholders a definition uses, by name. */
export function functionPlaceholders(definition: string): string[] {
  return [...new Set([...definition.matchAll(/\$\{(\w+)FunctionArn\}/g)].map((m) => m[1]!))].sort();
}
