/**
 * Postfix as a bench peer, from a private config in a temp dir (RECIPES.md): its own queue directory,
 * chroot off (the private queue has no chroot files), one smtpd on a free loopback port, virtual(8)
 * delivering every message for the virtual domain into one Maildir (fsync'd before the rename), log to a
 * file. `extraMain` adds main.cf lines (e.g. smtpd_milters). Stopped with `postfix stop`.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { freePort } from './dovecot.js';

export const SMTP_SOURCE = '/usr/sbin/smtp-source';

export interface PostfixProps {
  /** A fresh directory (its parents must be reachable by the postfix user: made 0755 here). */
  readonly dir: string;
  /** @default 'example.com' */
  readonly domain?: string;
  /** main.cf lines appended after the defaults. */
  readonly extraMain?: readonly string[];
}

export interface RunningPostfix {
  readonly port: number;
  readonly masterPid: number;
  /** Maildir/new every message of the domain lands in. */
  readonly newDir: string;
  readonly logFile: string;
  stop(): void;
}

export function countFiles(dir: string): number {
  try {
    return readdirSync(dir).length;
  } catch {
    return 0;
  }
}

export async function waitForCount(dir: string, n: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (countFiles(dir) < n) {
    if (Date.now() > end) throw new Error(`only ${countFiles(dir)} of ${n} messages arrived in ${dir}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function startPostfix(p: PostfixProps): Promise<RunningPostfix> {
  const base = p.dir;
  const etc = join(base, 'etc');
  const spool = join(base, 'spool');
  const data = join(base, 'data');
  const vmail = join(base, 'vmail');
  for (const d of [etc, spool, data, vmail]) mkdirSync(d, { recursive: true });
  // mkdtemp makes the work folder 0700: the postfix user must be able to reach its own folders.
  chmodSync(dirname(base), 0o755);
  chmodSync(base, 0o755);
  const uid = Number(spawnSync('id', ['-u', 'postfix'], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', 'postfix'], { encoding: 'utf8' }).stdout.trim());
  chownSync(data, uid, gid);
  chownSync(vmail, uid, gid);
  const port = await freePort();
  const logFile = join(base, 'maillog');
  writeFileSync(
    join(etc, 'main.cf'),
    [
      'compatibility_level = 3.6',
      `queue_directory = ${spool}`,
      `data_directory = ${data}`,
      'mail_owner = postfix',
      'myhostname = pf.bench',
      'mydomain = pf.bench',
      'mydestination =',
      'inet_interfaces = 127.0.0.1',
      'inet_protocols = ipv4',
      'mynetworks = 127.0.0.0/8',
      'smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination',
      `virtual_mailbox_domains = ${p.domain ?? 'example.com'}`,
      `virtual_mailbox_base = ${vmail}`,
      'virtual_mailbox_maps = static:bench/Maildir/',
      `virtual_uid_maps = static:${uid}`,
      `virtual_gid_maps = static:${gid}`,
      'virtual_destination_concurrency_limit = 20',
      'virtual_destination_recipient_limit = 1',
      `maillog_file = ${logFile}`,
      `maillog_file_prefixes = ${base}`,
      'alias_maps =',
      'alias_database =',
      'smtpd_banner = $myhostname ESMTP',
      'default_process_limit = 100',
      'smtpd_client_connection_count_limit = 0',
      'smtpd_client_event_limit_exceptions =',
      'biff = no',
      ...(p.extraMain ?? []),
      '',
    ].join('\n'),
  );
  // Debian's master.cf with chroot off and our port.
  const master = readFileSync('/etc/postfix/master.cf', 'utf8')
    .split('\n')
    .map((l) => {
      if (/^smtp\s+inet/.test(l)) return `127.0.0.1:${port} inet n - n - - smtpd`;
      const m = /^(\S+\s+\S+\s+\S+\s+\S+\s+)y(\s.*)$/.exec(l);
      return m ? `${m[1]}n${m[2]}` : l;
    })
    .join('\n');
  writeFileSync(join(etc, 'master.cf'), master);
  const pf = (...a: string[]) => spawnSync('postfix', ['-c', etc, ...a], { encoding: 'utf8' });
  const started = pf('start');
  if (started.status !== 0) {
    // postfix(1) reports fatal errors only to syslog or a terminal: ask again under script(1) for the reason.
    const why = spawnSync('script', ['-qec', `postfix -c ${etc} start`, '/dev/null'], { encoding: 'utf8' });
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-8).join('\n') : '';
    throw new Error(`postfix start failed: ${why.stdout}${why.stderr}\n${log}`);
  }
  const stop = () => {
    const r = pf('stop');
    if (r.status !== 0) process.stderr.write(`postfix stop: ${r.stderr}\n`);
  };
  try {
    let masterPid = 0;
    for (let i = 0; i < 100 && !masterPid; i++) {
      try {
        masterPid = Number(readFileSync(join(spool, 'pid/master.pid'), 'utf8').trim());
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    if (!masterPid) throw new Error('postfix master did not write its pid');
    return { port, masterPid, newDir: join(vmail, 'bench/Maildir/new'), logFile, stop };
  } catch (e) {
    stop();
    throw e;
  }
}
