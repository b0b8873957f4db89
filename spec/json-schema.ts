import { z } from 'zod';
import { rolloutSpecSchema } from './rollout';

/** The JSON Schema of what a user writes, for editors (yaml-language-server, VS Code). */
export function rolloutJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(rolloutSpecSchema, { io: 'input', unrepresentable: 'any' }),
    $id: 'https://baton.dev/schemas/rollout.schema.json',
    title: 'Baton rollout spec',
  };
}
