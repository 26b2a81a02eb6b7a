/**
 * Static directory: users and aliases in a YAML file, passwords as scrypt hashes
 * (`scrypt$<N>$<r>$<p>$<salt b64>$<hash b64>`, node:crypto, timing-safe compare) or as SCRAM-SHA-256 stored
 * keys (`scram-sha-256$…`, which serve both PLAIN and SCRAM logins); app passwords beside them. The file is re-read
 * when it changes (checked at most once a second, on use), so `mailfleet users add` needs no restart.
 *
 *   users:
 *     - address: alice@example.com
 *       passwordHash: scrypt$16384$8$1$...$...
 *       aliases: [a.smith@example.com]
 *       disabled: false
 *       quotaBytes: 1073741824
 *       limits: { imap: { perUser: 5 } }
 *       scramSha256: scram-sha-256$4096$...      # SCRAM-SHA-256 stored keys (lib/auth/scram.ts)
 *       appPasswords:                            # lib/auth/app-passwords.ts, SHA-256 of a random secret
 *         - { name: phone, hash: sha256$..., services: [imap, submission], createdAt: 2026-01-01T00:00:00Z }
 *   aliases:
 *     postmaster@example.com: [alice@example.com]
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { readFileSync, renameSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import yaml from 'js-yaml';
import { z } from 'zod';
import { MailfleetError } from '../errors.js';
import type { Logger } from '../log.js';
import { serviceLimitsSchema } from '../spec/schema.js';
import { appPasswordSchema, matchAppPassword, MAX_APP_PASSWORDS } from '../auth/app-passwords.js';
import { parseScramSecret, verifyPasswordWithScram } from '../auth/scram.js';
import type { AuthenticateOptions, AuthResult, DirectoryUser, IDirectory, UserRecord } from './types.js';

/** scrypt cost for new hashes: N=2^14, r=8, p=1 (16 MiB, a few tens of ms). */
export const SCRYPT_PARAMS = { N: 16384, r: 8, p: 1 } as const;
/** Longest password checked: longer ones are refused before hashing (cost control). */
export const MAX_PASSWORD_LENGTH = 1024;
/** Alias chains deeper than this are cut (loops, fan-out bombs). */
export const MAX_ALIAS_DEPTH = 5;
/** How often, at most, the file's mtime is checked. */
export const RELOAD_CHECK_MS = 1000;

const address = z
  .string()
  .regex(/^[^@\s]+@[^@\s]+$/, 'expected an address like alice@example.com')
  .transform((s) => s.toLowerCase());

const userSchema = z
  .object({
    address,
    passwordHash: z
      .string()
      .refine((h) => /^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/.test(h) || parseScramSecret(h) !== undefined, 'expected scrypt$N$r$p$salt$hash or scram-sha-256$i$salt$storedkey$serverkey'),
    scramSha256: z
      .string()
      .refine((h) => parseScramSecret(h) !== undefined, 'expected scram-sha-256$iterations$salt$storedkey$serverkey')
      .optional(),
    appPasswords: z.array(appPasswordSchema).max(MAX_APP_PASSWORDS).optional(),
    aliases: z.array(address).optional(),
    disabled: z.boolean().optional(),
    quotaBytes: z.number().int().positive().optional(),
    quotaMessages: z.number().int().positive().optional(),
    limits: z
      .object({ smtp: serviceLimitsSchema.partial(), submission: serviceLimitsSchema.partial(), imap: serviceLimitsSchema.partial(), pop3: serviceLimitsSchema.partial() })
      .partial()
      .strict()
      .optional(),
  })
  .strict();

export const usersFileSchema = z
  .object({
    users: z.array(userSchema).nullish().transform((v) => v ?? []),
    aliases: z
      .record(address, z.array(address))
      .nullish()
      .transform((v) => v ?? {}),
  })
  .strict();
export type UsersFile = z.infer<typeof usersFileSchema>;
type StaticUser = UsersFile['users'][number];

function scrypt(password: string | Buffer, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password, salt, keylen, opts, (e, k) => (e ? reject(e) : resolve(k))));
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const { N, r, p } = SCRYPT_PARAMS;
  const key = await scrypt(password.normalize('NFC'), salt, 32, { N, r, p, maxmem: 64 * 1024 * 1024 });
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const scram = parseScramSecret(encoded);
  if (scram) return verifyPasswordWithScram(password, scram);
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([^$]+)\$([^$]+)$/.exec(encoded);
  if (!m) return false;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const expected = Buffer.from(m[5]!, 'base64');
  if (N > 1 << 20 || r > 32 || p > 16 || expected.length < 16) return false;
  const key = await scrypt(password.normalize('NFC'), Buffer.from(m[4]!, 'base64'), expected.length, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 });
  return timingSafeEqual(key, expected);
}

/** Read and validate a users file; throws MailfleetError('SPEC_INVALID' | 'SPEC_IO'). */
export function readUsersFile(file: string): UsersFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new MailfleetError('SPEC_IO', `cannot read users file ${file}: ${(e as Error).message}`, { status: 400, cause: e });
  }
  let doc: unknown;
  try {
    doc = yaml.load(text) ?? {};
  } catch (e) {
    throw new MailfleetError('SPEC_YAML', `${file}: ${(e as Error).message}`, { status: 400, cause: e });
  }
  const r = usersFileSchema.safeParse(doc);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new MailfleetError('SPEC_INVALID', `${file} ${i.path.join('.')}: ${i.message}`, { status: 400 });
  }
  return r.data;
}

/** Writes a users file atomically, keeping its leading comment block. */
export function writeUsersFile(file: string, data: UsersFile): void {
  const old = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const header = old.split('\n').filter((l, i, all) => all.slice(0, i + 1).every((x) => x.startsWith('#')));
  const body = yaml.dump(
    { users: data.users.map((u) => Object.fromEntries(Object.entries(u).filter(([, v]) => v !== undefined))), aliases: data.aliases },
    { lineWidth: 200, noRefs: true },
  );
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  writeFileSync(tmp, `${header.length ? `${header.join('\n')}\n` : ''}${body}`, { mode: 0o600 });
  renameSync(tmp, file);
}

export interface StaticDirectoryProps {
  /** The users YAML file. */
  readonly file: string;
  /**
   * Local domains besides those of the users in the file (the spec's domains).
   * @default - only the domains found in the file
   */
  readonly domains?: readonly string[];
  readonly logger: Logger;
}

interface Loaded {
  readonly byAddress: Map<string, StaticUser>;
  /** user alias → owner address */
  readonly userAliases: Map<string, string>;
  readonly aliases: Record<string, string[]>;
  readonly domains: Set<string>;
  readonly stamp: string;
  /** Some user holds a SCRAM-SHA-256 secret. */
  readonly scram: boolean;
}

/** A valid hash of a random password: unknown logins cost the same scrypt as known ones. */
let dummyHash: Promise<string> | undefined;

export class StaticDirectory implements IDirectory {
  /** scrypt runs on libuv's thread pool: at most half of it (UV_THREADPOOL_SIZE, 4 unless set) checks at once. */
  readonly concurrentChecks = Math.max(1, Math.floor((Number(process.env.UV_THREADPOOL_SIZE) || 4) / 2));
  private data: Loaded;
  private lastCheck = 0;

  constructor(private readonly props: StaticDirectoryProps) {
    this.data = this.load();
  }

  async authenticate(login: string, password: string, opts: AuthenticateOptions = {}): Promise<AuthResult> {
    this.maybeReload();
    const user = this.lookup(login);
    if (password.length > MAX_PASSWORD_LENGTH) return { ok: false, reason: 'bad-credentials' };
    const mainPassword = opts.mainPassword ?? true;
    if (!user) {
      if (mainPassword) {
        dummyHash ??= hashPassword(randomBytes(16).toString('hex'));
        await verifyPassword(password, await dummyHash);
      }
      return { ok: false, reason: 'bad-credentials' };
    }
    // App passwords first: a cheap hash compare, and the only way in when the main password is refused.
    const app = matchAppPassword(user.appPasswords ?? [], password, opts.service);
    let via = 'password';
    if (app) {
      if (!app.allowed) return { ok: false, reason: 'bad-credentials' };
      via = `app-password:${app.record.name}`;
    } else if (!mainPassword || !(await verifyPassword(password, user.passwordHash))) return { ok: false, reason: 'bad-credentials' };
    if (user.disabled) return { ok: false, reason: 'disabled' };
    return { ok: true, user: toDirectoryUser(user), via };
  }

  async findUser(login: string): Promise<UserRecord | undefined> {
    this.maybeReload();
    const user = this.lookup(login);
    if (!user) return undefined;
    const scram = user.scramSha256 ?? (parseScramSecret(user.passwordHash) ? user.passwordHash : undefined);
    return { user: toDirectoryUser(user), disabled: user.disabled ?? false, ...(scram ? { scramSha256: scram } : {}) };
  }

  /** True once some user holds a SCRAM secret (`mailfleet users add` writes one): SCRAM is then offered. */
  supportsScram(): boolean {
    this.maybeReload();
    return this.data.scram;
  }

  private lookup(login: string): StaticUser | undefined {
    const key = login.trim().toLowerCase();
    return this.data.byAddress.get(key) ?? this.data.byAddress.get(this.data.userAliases.get(key) ?? '');
  }

  async resolveRecipient(addr: string): Promise<DirectoryUser[]> {
    this.maybeReload();
    const out = new Map<string, DirectoryUser>();
    const walk = (a: string, depth: number) => {
      if (depth > MAX_ALIAS_DEPTH) return;
      const user = this.data.byAddress.get(a) ?? this.data.byAddress.get(this.data.userAliases.get(a) ?? '');
      if (user) {
        if (!user.disabled) out.set(user.address, toDirectoryUser(user));
        return;
      }
      for (const t of this.data.aliases[a] ?? []) walk(t, depth + 1);
    };
    walk(addr.trim().toLowerCase(), 0);
    return [...out.values()];
  }

  async isLocalDomain(domain: string): Promise<boolean> {
    this.maybeReload();
    return this.data.domains.has(domain.toLowerCase());
  }

  async listDomains(): Promise<string[]> {
    this.maybeReload();
    return [...this.data.domains].sort();
  }

  async close(): Promise<void> {}

  /** Users as stored (for `mailfleet users list`). */
  listUsers(): Array<{ address: string; aliases: string[]; disabled: boolean }> {
    this.maybeReload();
    return [...this.data.byAddress.values()].map((u) => ({ address: u.address, aliases: u.aliases ?? [], disabled: u.disabled ?? false }));
  }

  private maybeReload(): void {
    const now = Date.now();
    if (now - this.lastCheck < RELOAD_CHECK_MS) return;
    this.lastCheck = now;
    try {
      if (stampOf(this.props.file) === this.data.stamp) return;
      this.data = this.load();
      this.props.logger.info({ file: this.props.file, users: this.data.byAddress.size }, 'users file reloaded');
    } catch (e) {
      // Keep serving the last good copy; a half-edited file must not lock everyone out.
      this.props.logger.error({ err: e, file: this.props.file }, 'users file reload failed; keeping the previous version');
    }
  }

  private load(): Loaded {
    const stamp = stampOf(this.props.file);
    const f = readUsersFile(this.props.file);
    const byAddress = new Map<string, StaticUser>();
    const userAliases = new Map<string, string>();
    const domains = new Set((this.props.domains ?? []).map((d) => d.toLowerCase()));
    for (const u of f.users) {
      byAddress.set(u.address, u);
      domains.add(u.address.split('@')[1]!);
      for (const a of u.aliases ?? []) userAliases.set(a, u.address);
    }
    for (const a of Object.keys(f.aliases)) domains.add(a.split('@')[1]!);
    const scram = f.users.some((u) => u.scramSha256 !== undefined || u.passwordHash.startsWith('scram-sha-256$'));
    return { byAddress, userAliases, aliases: f.aliases, domains, stamp, scram };
  }
}

function stampOf(file: string): string {
  const s = statSync(file);
  return `${s.ino}:${s.size}:${s.mtimeMs}`;
}

function toDirectoryUser(u: StaticUser): DirectoryUser {
  const [localPart, domain] = [u.address.slice(0, u.address.lastIndexOf('@')), u.address.slice(u.address.lastIndexOf('@') + 1)];
  return {
    address: u.address,
    localPart,
    domain,
    ...(u.limits ? { limits: u.limits } : {}),
    ...(u.quotaBytes ? { quotaBytes: u.quotaBytes } : {}),
    ...(u.quotaMessages ? { quotaMessages: u.quotaMessages } : {}),
  };
}
