/**
 * Dovecot as a bench peer, started by hand from a private config in a temp dir (RECIPES.md): passwd-file
 * auth, Maildir at <home>/<domain>/<local>/Maildir, mail processes as nobody (65534: Dovecot refuses
 * uid 0, so the Maildirs must belong to 65534), `dovecot -c <conf>` and SIGTERM to the master to stop.
 * The config is the one bench/imap-idle writes; a bench that needs more sessions raises the limits.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';

export const DOVECOT_UID = 65534;

export interface DovecotProps {
  /** A fresh directory for config, runtime files, log and homes. */
  readonly dir: string;
  readonly users: ReadonlyArray<{ readonly address: string; readonly password: string }>;
  /**
   * Dovecot's performance setting for short sessions: each imap process serves up to `reuse` sessions
   * one after another (service_count) and `prestart` wait ready (process_min_avail), so a LOGIN does not
   * fork and exec a process. All mail users share one uid here, which is what makes reuse possible.
   * @default undefined (Debian's default: one new imap process per session)
   */
  readonly imapProcesses?: { readonly reuse: number; readonly prestart: number };
  /**
   * Load imap_zlib so Dovecot offers COMPRESS=DEFLATE (RFC 4978), for conformance scripts that compress.
   * @default false
   */
  readonly compress?: boolean;
}

export interface RunningDovecot {
  readonly port: number;
  readonly masterPid: number;
  /** The Maildir of a user (what Dovecot reads: deliver here, owned by DOVECOT_UID). */
  maildirOf(address: string): string;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = connect(port, '127.0.0.1');
      s.on('connect', () => (s.destroy(), r(true)));
      s.on('error', () => r(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`dovecot never opened port ${port}`);
}

/** Starts Dovecot; throws with what to install when it cannot. */
export async function startDovecot(props: DovecotProps): Promise<RunningDovecot> {
  const { dir } = props;
  // Dovecot's auth and mail processes run as other users: they must reach the config and passwd file.
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'run'), { recursive: true });
  mkdirSync(join(dir, 'home'), { recursive: true });
  chownSync(join(dir, 'home'), DOVECOT_UID, DOVECOT_UID);
  const port = await freePort();
  writeFileSync(join(dir, 'passwd'), props.users.map((u) => `${u.address}:{PLAIN}${u.password}::::::`).join('\n') + '\n', { mode: 0o644 });
  const conf = join(dir, 'dovecot.conf');
  writeFileSync(
    conf,
    `base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:~/Maildir
mail_max_userip_connections = 100000
default_process_limit = 10000
default_client_limit = 100000
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${dir}/passwd
}
userdb {
  driver = static
  args = uid=${DOVECOT_UID} gid=${DOVECOT_UID} home=${dir}/home/%d/%n
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${port}
  }
  inet_listener imaps {
    port = 0
  }
  service_count = 0
  process_min_avail = 1
  client_limit = 10000
  vsz_limit = 1G
}
service imap {
  process_limit = 10000${props.imapProcesses ? `\n  service_count = ${props.imapProcesses.reuse}\n  process_min_avail = ${props.imapProcesses.prestart}` : ''}
}
service auth {
  client_limit = 100000
}${props.compress ? '\nprotocol imap {\n  mail_plugins = $mail_plugins imap_zlib\n}' : ''}
service anvil {
  client_limit = 100000
}
`,
  );
  try {
    // stdio ignored: the daemonised master would hold our pipes open forever.
    execFileSync('dovecot', ['-c', conf], { stdio: 'ignore' });
  } catch (e) {
    throw new Error(`dovecot could not start (${(e as Error).message}): install dovecot-imapd and run as root`);
  }
  // The master writes its pid file after it forks; the listening port comes later still.
  let masterPid = 0;
  for (let i = 0; i < 100 && !masterPid; i++) {
    masterPid = existsSync(join(dir, 'run', 'master.pid')) ? Number(readFileSync(join(dir, 'run', 'master.pid'), 'utf8').trim()) : 0;
    if (!masterPid) await sleep(50);
  }
  if (!masterPid) throw new Error('dovecot wrote no master.pid');
  const stop = async () => {
    try {
      process.kill(masterPid, 'SIGTERM');
    } catch {
      return; // already gone
    }
    // Wait for the master and its children so the caller can remove the directory.
    for (let i = 0; i < 100 && existsSync(`/proc/${masterPid}`); i++) await sleep(100);
  };
  try {
    await waitPort(port);
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    port,
    masterPid,
    maildirOf: (address) => {
      const [local, domain] = address.split('@') as [string, string];
      return join(dir, 'home', domain, local, 'Maildir');
    },
    stop,
  };
}
