/** Writes schemas/<machine>.schema.json from the zod input schemas (`npm run schemas`); a test checks they are current. */
import { writeFileSync } from 'node:fs';
import { inputJsonSchema, MACHINE_NAMES } from '../infra/console-inputs.ts';

for (const machine of MACHINE_NAMES) {
  const file = new URL(`../schemas/${machine}.schema.json`, import.meta.url);
  writeFileSync(file, JSON.stringify(inputJsonSchema(machine), null, 2) + '\n');
  process.stderr.write(`wrote schemas/${machine}.schema.json\n`);
}
