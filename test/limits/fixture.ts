/** Daemon configs for limits tests, built from a small spec through the real plan. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPlan, daemonConfig } from '../../lib/plan/index.js';
import type { DaemonConfig } from '../../lib/plan/types.js';
import { specSchema, type SpecInput } from '../../lib/spec/schema.js';

export function testConfig(extra: Partial<SpecInput> = {}): DaemonConfig {
  const spec = specSchema.parse({
    platform: { name: 'limits-test' },
    domains: [
      { name: 'example.com' },
      { name: 'example.org', listeners: 'dedicated', limits: { imap: { perUser: 5, perDomain: 40 } } },
    ],
    limits: { imap: { perUser: 20, perUserIp: 10 } },
    ...extra,
  });
  return daemonConfig(buildPlan(spec), { mode: 'local-direct' });
}

export function tempDir(prefix = 'mf-limits-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
