import { z } from 'zod';
import { specSchema } from './schema.js';

/** The published JSON Schema (draft 2020-12) for editor completion: `mailfleet schema`. */
export function jsonSchema(): Record<string, unknown> {
  const s = z.toJSONSchema(specSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { ...s, $id: 'https://mailfleet.dev/schema/mailfleet.schema.json', title: 'mailfleet.yaml' };
}
