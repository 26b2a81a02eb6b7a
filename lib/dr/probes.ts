/**
 * Verification probes run from the drill runner: DNS answer, SMTP banner, IMAP login + FETCH. Each probe
 * answers ok or not-yet (never throws), so the drill can poll it until RTO is reached.
 */
import { promises as dns } from 'node:dns';
import { MiniImapClient } from './mini-imap.js';
import { readSmtpBanner } from './mini-smtp.js';
import type { ProbeRunner } from './aws-run.js';

export interface ProbeCredentials {
  readonly user: string;
  readonly password: string;
}

/** Credentials of the drill's probe mailbox, from MAILFLEET_DRILL_USER / MAILFLEET_DRILL_PASSWORD. */
export function probeCredentialsFromEnv(env: NodeJS.ProcessEnv = process.env): ProbeCredentials | undefined {
  const user = env.MAILFLEET_DRILL_USER;
  const password = env.MAILFLEET_DRILL_PASSWORD;
  return user && password ? { user, password } : undefined;
}

export function defaultProbeRunner(creds: ProbeCredentials | undefined, timeoutMs = 5000): ProbeRunner {
  return async (p) => {
    try {
      if (p.kind === 'dns-switch') {
        const [a, b] = await Promise.all([dns.resolve4(p.host), dns.resolve4(p.expect ?? '')]);
        const ok = a.some((x) => b.includes(x));
        return {
          ok,
          detail: ok
            ? `${p.host} → ${a.join(',')}`
            : `${p.host} → ${a.join(',')}, expected one of ${b.join(',')}`,
        };
      }
      if (p.kind === 'smtp-banner') {
        const banner = await readSmtpBanner(p.host, p.port ?? 25, timeoutMs);
        return { ok: banner.startsWith('220'), detail: banner };
      }
      if (!creds)
        return {
          ok: false,
          detail: 'set MAILFLEET_DRILL_USER and MAILFLEET_DRILL_PASSWORD for the IMAP probe',
        };
      const client = await MiniImapClient.connect({
        host: p.host,
        port: p.port ?? 143,
        tls: p.port === 993 ? 'implicit' : 'starttls',
        timeoutMs,
      });
      try {
        await client.login(creds.user, creds.password);
        const exists = await client.select('INBOX');
        if (exists > 0) await client.command('FETCH 1 (FLAGS)');
        return { ok: true, detail: `login ok, INBOX ${exists} messages` };
      } finally {
        await client.logout();
      }
    } catch (e) {
      return { ok: false, detail: (e as Error).message };
    }
  };
}
