/**
 * Live quota overrides (`mailfleet quota set`) survive restarts in <dataDir>/quotas-state.json, beside
 * the live limits (limits-state.json), written the same way: temp file, fsync, rename. A file that does
 * not validate stops the daemon: starting without it would undo the operator's changes.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { MailfleetError } from '../errors.js';
import { writeJsonDurably } from '../state-json.js';

export const QUOTAS_STATE_FILE = 'quotas-state.json';

const overrideSchema = z
  .object({ storageBytes: z.number().int().nonnegative().optional(), messages: z.number().int().nonnegative().optional() })
  .strict();

const stateSchema = z
  .object({
    version: z.literal(1),
    users: z.record(z.string(), overrideSchema).default({}),
    domains: z.record(z.string(), overrideSchema).default({}),
  })
  .strict();
export type QuotasState = z.infer<typeof stateSchema>;

export function quotasStatePath(dataDir: string): string {
  return join(dataDir, QUOTAS_STATE_FILE);
}

export function readQuotasState(file: string): QuotasState {
  if (!existsSync(file)) return { version: 1, users: {}, domains: {} };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new MailfleetError('SPEC_IO', `quotas state ${file} is unreadable or not JSON (${(e as Error).message}); fix or move it away`, { cause: e });
  }
  const r = stateSchema.safeParse(parsed);
  if (!r.success) {
    const first = r.error.issues[0]!;
    throw new MailfleetError('SPEC_INVALID', `quotas state ${file} is invalid at ${first.path.join('.') || '(root)'}: ${first.message}; fix or move it away`);
  }
  return r.data;
}

export function writeQuotasState(file: string, state: QuotasState): void {
  writeJsonDurably(file, state);
}
