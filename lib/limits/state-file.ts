/**
 * Live limit overrides survive restarts in <dataDir>/limits-state.json. Written atomically (temp file,
 * fsync, rename, fsync of the folder) so a crash leaves the old or the new file, never half of one.
 * A file that cannot be read or does not validate stops the daemon with a message naming it: silently
 * starting without the operator's changes would undo them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { MailfleetError } from '../errors.js';
import { writeJsonDurably } from '../state-json.js';

export const LIMITS_STATE_FILE = 'limits-state.json';

/** Changes kept in the file's history: enough to answer "who changed what lately". */
export const HISTORY_LENGTH = 200;

const changeSchema = z.object({
  at: z.string(),
  scope: z.string(),
  previous: z.number().int().positive().nullable(),
  value: z.number().int().positive().nullable(),
  source: z.string().optional(),
});
export type RecordedChange = z.infer<typeof changeSchema>;

const stateSchema = z
  .object({
    version: z.literal(1),
    overrides: z.record(z.string(), z.number().int().positive()),
    history: z.array(changeSchema).default([]),
  })
  .strict();
export type LimitsState = z.infer<typeof stateSchema>;

export function limitsStatePath(dataDir: string): string {
  return join(dataDir, LIMITS_STATE_FILE);
}

export function readLimitsState(file: string): LimitsState {
  if (!existsSync(file)) return { version: 1, overrides: {}, history: [] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new MailfleetError(
      'SPEC_IO',
      `limits state ${file} is unreadable or not JSON (${(e as Error).message}); fix or move it away — starting without it would undo live limit changes`,
      { cause: e },
    );
  }
  const r = stateSchema.safeParse(parsed);
  if (!r.success) {
    const first = r.error.issues[0]!;
    throw new MailfleetError(
      'SPEC_INVALID',
      `limits state ${file} is invalid at ${first.path.join('.') || '(root)'}: ${first.message}; fix or move it away`,
    );
  }
  return r.data;
}

export function writeLimitsState(file: string, state: LimitsState): void {
  writeJsonDurably(file, state);
}
