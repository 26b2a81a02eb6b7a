/**
 * Shared pieces of the HAProxy tests: a temp spec on free loopback ports, and the check that haproxy exists.
 * Port layout from a random base B (checked free): public B..B+6, admin B+7, stats B+8, dedicated tenants
 * B+10.. (10 each), daemon behind HAProxy at public + 100.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';

export const INTERNAL_OFFSET = 100;

/** Fails the test with what to install when haproxy is missing. */
export function requireHaproxy(): void {
  if (spawnSync('haproxy', ['-v']).status !== 0)
    throw new Error('haproxy is not installed: apt-get install haproxy (scripts/install-system-deps.sh)');
}

function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/** A random base whose whole block (B .. B+INTERNAL_OFFSET+10) is free on 127.0.0.1. */
export async function freePortBase(span = INTERNAL_OFFSET + 10): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 3500) * 10;
    let ok = true;
    for (let p = base; p < base + span && ok; p++) ok = await portFree(p);
    if (ok) return base;
  }
  throw new Error('no free port block found on 127.0.0.1');
}

export interface TempSpec {
  readonly dir: string;
  readonly file: string;
  readonly base: number;
  readonly port: (protocol: 'smtp' | 'submission' | 'submissions' | 'imap' | 'imaps' | 'pop3' | 'pop3s' | 'admin' | 'haproxyStats') => number;
  cleanup(): void;
}

const OFFSETS = { smtp: 0, submission: 1, submissions: 2, imap: 3, imaps: 4, pop3: 5, pop3s: 6, admin: 7, haproxyStats: 8 } as const;

/** Writes a spec (merged over a small local default) and an empty users file into a temp dir. */
export async function writeTempSpec(over: Record<string, unknown> = {}, users: unknown[] = []): Promise<TempSpec> {
  const base = await freePortBase();
  const dir = mkdtempSync(join(tmpdir(), 'mf-haproxy-'));
  const ports = Object.fromEntries(Object.entries(OFFSETS).map(([k, v]) => [k, base + v]));
  const spec = {
    version: 1,
    platform: { name: 'hatest', hostname: 'mail.test', adminToken: 'test-admin-token-0123456789' },
    domains: [{ name: 'example.com' }],
    directory: { kind: 'static', file: 'users.yaml' },
    smtp: { allowInsecureAuth: true },
    imap: { allowInsecureAuth: true },
    pop3: { allowInsecureAuth: true },
    ...over,
    local: {
      bindAddress: '127.0.0.1',
      dataDir: join(dir, 'var'),
      haproxy: 'auto',
      ports: { ...ports, dedicatedBase: base + 10, internalOffset: INTERNAL_OFFSET },
    },
  };
  const file = join(dir, 'mailfleet.yaml');
  writeFileSync(file, yaml.dump(spec));
  writeFileSync(join(dir, 'users.yaml'), yaml.dump({ users, aliases: {} }));
  return {
    dir,
    file,
    base,
    port: (p) => base + OFFSETS[p],
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
