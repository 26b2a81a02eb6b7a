/**
 * The filtering half of the local platform: when the spec has `filtering` and its rspamd URL is on this
 * machine, `mailfleet up` starts rspamd (config from lib/filter/rspamd-config.ts under <dataDir>/run/rspamd)
 * and, when ClamAV is installed with signatures and filtering.antivirus is on, clamd; DKIM keys of every
 * local domain are made under <dataDir>/dkim first. Without rspamd installed, the daemon still runs and
 * filtering.rspamd.onUnavailable applies.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { dkimKeyDir, ensureDkimKey } from '../filter/dkim.js';
import { findProgram, startClamd, startRspamd, type ChildDaemon } from '../filter/processes.js';
import type { Spec } from '../spec/schema.js';

/** Where Debian's freshclam puts the signatures clamd loads. */
const CLAMAV_DB = '/var/lib/clamav';
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

export interface LocalFilter {
  /** What runs, or why not: printed above the endpoint table. */
  readonly note: string;
  /** Settles when rspamd answers, or fails to start (its log tail in the error). */
  readonly ready: Promise<void>;
  stop(): Promise<void>;
}

export async function startLocalFilter(spec: Spec, dataDir: string): Promise<LocalFilter | undefined> {
  const f = spec.filtering;
  if (!f) return undefined;
  const url = new URL(f.rspamd.url);
  if (!LOOPBACK.has(url.hostname)) return { note: `filtering through rspamd at ${f.rspamd.url} (not started here)`, ready: Promise.resolve(), stop: async () => undefined };
  if (!findProgram('rspamd')) return { note: `rspamd not installed: mail is ${f.rspamd.onUnavailable === 'accept' ? 'delivered unscanned' : 'deferred (451 4.7.1)'} (apt-get install rspamd)`, ready: Promise.resolve(), stop: async () => undefined };
  const keys = dkimKeyDir(dataDir);
  if (f.dkim.sign) for (const d of spec.domains) ensureDkimKey(keys, d.name, f.dkim.selector);
  const run = join(dataDir, 'run');
  let clamd: (ChildDaemon & { socket: string }) | undefined;
  const signatures = existsSync(CLAMAV_DB) && readdirSync(CLAMAV_DB).some((n) => /\.(cvd|cld)$/.test(n));
  if (f.antivirus && findProgram('clamd') && signatures) clamd = await startClamd({ dir: join(run, 'clamd'), databaseDir: CLAMAV_DB });
  let rspamd: ChildDaemon;
  try {
    rspamd = await startRspamd({
      dir: join(run, 'rspamd'),
      // Up to a minute with the stock public-suffix list: `up` does not wait; until then onUnavailable applies.
      background: true,
      readyTimeoutMs: 300_000,
      config: { normalBind: `${url.hostname === 'localhost' ? '127.0.0.1' : url.hostname.replace(/^\[|\]$/g, '')}:${url.port || '80'}`, dkimKeyDir: keys, dkimSelector: f.dkim.selector, dkimSign: f.dkim.sign, clamdSocket: clamd?.socket },
    });
  } catch (e) {
    await clamd?.stop();
    throw e;
  }
  const av = clamd ? 'clamd' : f.antivirus ? 'no antivirus (clamd or its signatures missing: freshclam)' : 'antivirus off';
  return {
    note: `rspamd ${f.rspamd.url} (pid ${rspamd.pid}, starting: until it answers mail is ${f.rspamd.onUnavailable === 'accept' ? 'delivered unscanned' : 'deferred'}), ${av}, DKIM keys in ${keys} (mailfleet dkim show <domain>)`,
    ready: rspamd.ready,
    async stop() {
      await rspamd.stop();
      await clamd?.stop();
    },
  };
}
