import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rolloutJsonSchema } from './json-schema';

/** `npm run schema`: regenerates spec/rollout.schema.json from the zod schema (a test keeps them equal). */
export const schemaPath = join(__dirname, 'rollout.schema.json');

export function renderSchema(): string {
  return `${JSON.stringify(rolloutJsonSchema(), null, 2)}\n`;
}

if (require.main === module) {
  writeFileSync(schemaPath, renderSchema());
  process.stdout.write(`wrote ${schemaPath}\n`);
}
