/**
 * Real OpenLDAP slapd servers for tests: a standalone server, or a provider + syncrepl consumer pair.
 *
 * Each server lives in its own temp directory (slapd.conf, mdb database, pid file); entries are loaded
 * with slapadd before start, so a server is ready with its data ~0.1 s after the port opens. Servers run
 * in the foreground (`-d 0`) as children of the test process and are stopped by PID. With `tls: true`
 * an openssl-made CA signs a certificate for 127.0.0.1: the server then also listens on ldaps:// and
 * accepts StartTLS; the CA file is exposed for clients.
 *
 *   const ldap = await startSlapd({ ldif, schemas: ['mailfleet'] });
 *   … ldap.url, ldap.rootDn, ldap.rootPassword, await ldap.modify('dn: …\nchangetype: modify\n…') …
 *   await ldap.stop();
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'ldapts';
import { MAILFLEET_LDAP_SCHEMA } from '../../lib/directory/ldap/schema.js';

const SCHEMA_DIR = '/etc/ldap/schema';
const MODULE_DIR = '/usr/lib/ldap';

/**
 * A test-only schema shaped like Active Directory's user attributes (real AD OIDs and names), so the
 * active-directory mapping can be exercised against slapd. AD's `user` class is structural; here it is
 * auxiliary so entries can pair it with inetOrgPerson.
 */
export const AD_SHAPE_SCHEMA = `
attributetype ( 1.2.840.113556.1.4.656 NAME 'userPrincipalName'
	EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
	EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.2.210 NAME 'proxyAddresses'
	EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl'
	EQUALITY integerMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
objectclass ( 1.2.840.113556.1.5.9 NAME 'user' SUP top AUXILIARY
	MAY ( userPrincipalName $ sAMAccountName $ proxyAddresses $ userAccountControl ) )
`;

export interface SlapdProps {
  /**
   * Directory suffix; its entry is created by the harness (dcObject + organization).
   * @default 'dc=mailfleet,dc=test'
   */
  readonly suffix?: string;
  /** LDIF of the entries below the suffix, loaded with slapadd before start. @default - none */
  readonly ldif?: string;
  /**
   * Extra schemas after core, cosine and inetorgperson: 'mailfleet' (lib/directory/ldap/schema),
   * 'ad' (AD_SHAPE_SCHEMA), or a path to a .schema file.
   * @default - none
   */
  readonly schemas?: readonly string[];
  /** Equality indexes besides objectClass, uid, mail and cn. @default - none */
  readonly indexes?: readonly string[];
  /** Also listen on ldaps:// and accept StartTLS, with a CA made by openssl. @default false */
  readonly tls?: boolean;
  /** Root DN password. @default - random */
  readonly rootPassword?: string;
}

export interface SlapdServer {
  readonly role: 'standalone' | 'provider' | 'consumer';
  /** ldap://127.0.0.1:<port>/ */
  readonly url: string;
  readonly port: number;
  /** ldaps://127.0.0.1:<port>/ when started with tls. */
  readonly ldapsUrl: string | undefined;
  /** PEM CA that signed the server certificate, when started with tls. */
  readonly caFile: string | undefined;
  readonly suffix: string;
  readonly rootDn: string;
  readonly rootPassword: string;
  /** The server's temp directory (slapd.conf, db/, slapd.log). */
  readonly dir: string;
  readonly pid: number;
  alive(): boolean;
  /** Applies an LDIF change set with ldapmodify as the root DN (a consumer answers with a referral). */
  modify(ldif: string): Promise<void>;
  /** Number of entries matching the filter under the suffix, read as the root DN. */
  count(filter: string): Promise<number>;
  /** Waits until `count(filter)` reaches `atLeast` (e.g. a change replicated); throws after timeoutMs. */
  waitFor(filter: string, opts?: { atLeast?: number; timeoutMs?: number }): Promise<void>;
  /** SIGSTOP: the server keeps its sockets but answers nothing (a hung host). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** Kills the server without cleanup (SIGKILL by default): the crash in failover tests. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Stops the server (SIGTERM, then SIGKILL) and removes its temp directory. Safe to call twice. */
  stop(): Promise<void>;
}

export interface SlapdPair {
  readonly provider: SlapdServer;
  /** syncrepl consumer (refreshAndPersist) of the provider; writes to it return a referral. */
  readonly consumer: SlapdServer;
  stop(): Promise<void>;
}

/** What is missing for slapd tests on this machine, or undefined when they can run. */
export function slapdUnavailable(): string | undefined {
  for (const bin of ['slapd', 'slapadd', 'ldapmodify']) {
    if (spawnSync('sh', ['-c', `command -v ${bin} || test -x /usr/sbin/${bin}`]).status !== 0)
      return `${bin} not found: install slapd and ldap-utils (scripts/install-system-deps.sh)`;
  }
  try {
    readFileSync(join(MODULE_DIR, 'back_mdb.so'));
  } catch {
    return `${MODULE_DIR}/back_mdb.so missing: install slapd`;
  }
  return undefined;
}

/** `{SSHA}` hash of a password, the form slapd stores in userPassword. */
export function ssha(password: string): string {
  const salt = randomBytes(8);
  const digest = createHash('sha1').update(password).update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`;
}

/** A loopback port that was free a moment ago (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function run(cmd: string, args: string[], input?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.once('error', reject);
    p.once('close', (code) => resolve({ code: code ?? 1, out }));
    p.stdin.end(input ?? '');
  });
}

async function mustRun(cmd: string, args: string[], input?: string): Promise<string> {
  const r = await run(cmd, args, input);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.out.trim()}`);
  return r.out;
}

interface TlsFiles {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/** A throwaway CA and a server certificate for 127.0.0.1 / localhost. */
async function makeTls(dir: string): Promise<TlsFiles> {
  mkdirSync(dir, { recursive: true });
  const f = (n: string) => join(dir, n);
  await mustRun('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=mailfleet test CA',
    '-keyout', f('ca.key'), '-out', f('ca.pem'), '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await mustRun('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', f('server.key'), '-out', f('server.csr')]);
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  await mustRun('openssl', ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial',
    '-days', '2', '-extfile', f('ext.cnf'), '-out', f('server.pem')]);
  return { caFile: f('ca.pem'), certFile: f('server.pem'), keyFile: f('server.key') };
}

function suffixEntry(suffix: string): string {
  const first = /^dc=([^,]+)/i.exec(suffix);
  if (!first) throw new Error(`slapd harness: suffix must start with dc=…, got ${suffix}`);
  return `dn: ${suffix}\nobjectClass: dcObject\nobjectClass: organization\ndc: ${first[1]}\no: ${first[1]}\n`;
}

interface ServerConfig {
  role: SlapdServer['role'];
  suffix: string;
  rootPassword: string;
  schemas: readonly string[];
  indexes: readonly string[];
  tls?: TlsFiles;
  /** For a consumer: the provider to replicate from. */
  provider?: { url: string; rootDn: string; rootPassword: string };
  ldif?: string;
}

async function startServer(cfg: ServerConfig): Promise<SlapdServer> {
  const missing = slapdUnavailable();
  if (missing) throw new Error(`slapd harness cannot run: ${missing}`);
  const dir = mkdtempSync(join(tmpdir(), `mailfleet-slapd-${cfg.role}-`));
  const dbDir = join(dir, 'db');
  mkdirSync(dbDir);
  const rootDn = `cn=admin,${cfg.suffix}`;

  const includes = ['core', 'cosine', 'inetorgperson'].map((s) => join(SCHEMA_DIR, `${s}.schema`));
  for (const s of cfg.schemas) {
    if (s === 'mailfleet') {
      writeFileSync(join(dir, 'mailfleet.schema'), MAILFLEET_LDAP_SCHEMA);
      includes.push(join(dir, 'mailfleet.schema'));
    }
    else if (s === 'ad') {
      writeFileSync(join(dir, 'ad-shape.schema'), AD_SHAPE_SCHEMA);
      includes.push(join(dir, 'ad-shape.schema'));
    } else includes.push(s);
  }
  const indexAttrs = ['objectClass', 'uid', 'mail', 'cn', ...cfg.indexes];
  if (cfg.schemas.includes('mailfleet')) indexAttrs.push('mailAlternateAddress');
  if (cfg.schemas.includes('ad')) indexAttrs.push('userPrincipalName', 'sAMAccountName', 'proxyAddresses');
  if (cfg.provider) indexAttrs.push('entryUUID', 'entryCSN');

  const lines = [
    ...includes.map((i) => `include ${i}`),
    `pidfile ${join(dir, 'slapd.pid')}`,
    `argsfile ${join(dir, 'slapd.args')}`,
    `modulepath ${MODULE_DIR}`,
    'moduleload back_mdb',
    ...(cfg.role === 'provider' ? ['moduleload syncprov'] : []),
    ...(cfg.tls
      ? [`TLSCACertificateFile ${cfg.tls.caFile}`, `TLSCertificateFile ${cfg.tls.certFile}`, `TLSCertificateKeyFile ${cfg.tls.keyFile}`]
      : []),
    'database mdb',
    'maxsize 104857600',
    `suffix "${cfg.suffix}"`,
    `rootdn "${rootDn}"`,
    `rootpw ${cfg.rootPassword}`,
    `directory ${dbDir}`,
    `index ${[...new Set(indexAttrs)].join(',')} eq`,
    // Users may bind and read directory data; nobody reads passwords; anonymous may only bind.
    'access to attrs=userPassword by self write by anonymous auth by * none',
    'access to * by users read by * none',
    ...(cfg.role === 'provider' ? ['overlay syncprov', 'syncprov-checkpoint 100 10', 'syncprov-sessionlog 100'] : []),
    ...(cfg.provider
      ? [
          `syncrepl rid=001 provider=${cfg.provider.url} bindmethod=simple binddn="${cfg.provider.rootDn}" credentials=${cfg.provider.rootPassword}` +
            ` searchbase="${cfg.suffix}" type=refreshAndPersist retry="1 +" timeout=3`,
          `updateref ${cfg.provider.url}`,
        ]
      : []),
  ];
  const conf = join(dir, 'slapd.conf');
  writeFileSync(conf, lines.join('\n') + '\n');

  if (cfg.ldif !== undefined) {
    const data = join(dir, 'data.ldif');
    writeFileSync(data, `${suffixEntry(cfg.suffix)}\n${cfg.ldif.trim()}\n`);
    await mustRun('slapadd', ['-q', '-f', conf, '-l', data]);
  }

  const port = await freePort();
  const ldapsPort = cfg.tls ? await freePort() : undefined;
  const url = `ldap://127.0.0.1:${port}/`;
  const ldapsUrl = ldapsPort ? `ldaps://127.0.0.1:${ldapsPort}/` : undefined;
  const child: ChildProcess = spawn('slapd', ['-d', '0', '-f', conf, '-h', [url, ldapsUrl].filter(Boolean).join(' ')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (log.length < 64_000) log += d.toString();
  });
  let exited = false;
  const exitedP = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );

  const deadline = Date.now() + 10_000;
  while (!(await portOpen(port)) || (ldapsPort !== undefined && !(await portOpen(ldapsPort)))) {
    if (exited || Date.now() > deadline) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`slapd (${cfg.role}) did not start on ${url}: ${log.trim() || 'no output'}`);
    }
    await sleep(50);
  }

  const withClient = async <T>(fn: (c: Client) => Promise<T>): Promise<T> => {
    const c = new Client({ url, timeout: 5000, connectTimeout: 5000 });
    try {
      await c.bind(rootDn, cfg.rootPassword);
      return await fn(c);
    } finally {
      await c.unbind().catch(() => undefined);
    }
  };
  let stopped = false;
  const server: SlapdServer = {
    role: cfg.role,
    url,
    port,
    ldapsUrl,
    caFile: cfg.tls?.caFile,
    suffix: cfg.suffix,
    rootDn,
    rootPassword: cfg.rootPassword,
    dir,
    pid: child.pid ?? -1,
    alive: () => !exited,
    async modify(ldif) {
      await mustRun('ldapmodify', ['-x', '-H', url, '-D', rootDn, '-w', cfg.rootPassword], ldif);
    },
    async count(filter) {
      return withClient(async (c) => (await c.search(cfg.suffix, { scope: 'sub', filter, attributes: ['1.1'] })).searchEntries.length);
    },
    async waitFor(filter, opts = {}) {
      const until = Date.now() + (opts.timeoutMs ?? 10_000);
      let last = -1;
      for (;;) {
        last = await server.count(filter).catch(() => -1);
        if (last >= (opts.atLeast ?? 1)) return;
        if (Date.now() > until) throw new Error(`slapd ${cfg.role}: ${filter} matched ${last} entries, wanted ${opts.atLeast ?? 1}`);
        await sleep(50);
      }
    },
    pause() {
      if (exited) return;
      child.kill('SIGSTOP');
      // kill() only queues the stop: wait (up to 1 s) until every thread is stopped, so no request sent
      // after pause() returns can still be answered (a CI run saw one answered on a loaded machine).
      const until = Date.now() + 1000;
      const sleeper = new Int32Array(new SharedArrayBuffer(4));
      while (Date.now() < until && !processStopped(child.pid!)) Atomics.wait(sleeper, 0, 0, 2);
    },
    resume() {
      if (!exited) child.kill('SIGCONT');
    },
    async kill(signal = 'SIGKILL') {
      if (!exited) {
        child.kill('SIGCONT');
        child.kill(signal);
        await exitedP;
      }
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (!exited) {
        child.kill('SIGCONT');
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        t.unref();
        await exitedP;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/** A standalone slapd with the given entries. */
export async function startSlapd(props: SlapdProps = {}): Promise<SlapdServer> {
  const suffix = props.suffix ?? 'dc=mailfleet,dc=test';
  const tlsDir = props.tls ? mkdtempSync(join(tmpdir(), 'mailfleet-slapd-tls-')) : undefined;
  const tls = tlsDir ? await makeTls(tlsDir) : undefined;
  const server = await startServer({
    role: 'standalone',
    suffix,
    rootPassword: props.rootPassword ?? randomBytes(12).toString('hex'),
    schemas: props.schemas ?? [],
    indexes: props.indexes ?? [],
    tls,
    ldif: props.ldif ?? '',
  }).catch((e: unknown) => {
    if (tlsDir) rmSync(tlsDir, { recursive: true, force: true });
    throw e;
  });
  return tlsDir ? withExtraCleanup(server, tlsDir) : server;
}

function withExtraCleanup(server: SlapdServer, dir: string): SlapdServer {
  const stop = server.stop.bind(server);
  return Object.assign(server, {
    async stop() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  });
}

/**
 * A provider with the entries and a syncrepl consumer that starts empty and has caught up (same entry
 * count) when this resolves. Both share schemas, suffix, root password and (with tls) one CA.
 */
export async function startSlapdPair(props: SlapdProps = {}): Promise<SlapdPair> {
  const suffix = props.suffix ?? 'dc=mailfleet,dc=test';
  const rootPassword = props.rootPassword ?? randomBytes(12).toString('hex');
  const tlsDir = props.tls ? mkdtempSync(join(tmpdir(), 'mailfleet-slapd-tls-')) : undefined;
  const tls = tlsDir ? await makeTls(tlsDir) : undefined;
  const common = { suffix, rootPassword, schemas: props.schemas ?? [], indexes: props.indexes ?? [], tls };
  let provider: SlapdServer | undefined;
  let consumer: SlapdServer | undefined;
  const stop = async () => {
    await consumer?.stop();
    await provider?.stop();
    if (tlsDir) rmSync(tlsDir, { recursive: true, force: true });
  };
  try {
    provider = await startServer({ ...common, role: 'provider', ldif: props.ldif ?? '' });
    consumer = await startServer({
      ...common,
      role: 'consumer',
      provider: { url: provider.url, rootDn: provider.rootDn, rootPassword },
    });
    const entries = await provider.count('(objectClass=*)');
    await consumer.waitFor('(objectClass=*)', { atLeast: entries, timeoutMs: 15_000 });
  } catch (e) {
    await stop();
    throw e;
  }
  return { provider, consumer, stop };
}

/** True when every thread of the process is in the stopped state (T) — /proc/<pid>/task/<tid>/stat. */
function processStopped(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/task`).every((tid) => / T /.test(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').replace(/^.*\)/, ' ')));
  } catch {
    return true; // gone
  }
}
