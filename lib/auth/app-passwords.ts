/**
 * App passwords: several per user, each named, revocable (removed from the user's record) and optionally
 * limited to some services. They are generated here (120 random bits), shown once, and stored as SHA-256:
 * a random secret of that strength needs no slow hash (as API tokens), so checking a user's several app
 * passwords costs microseconds and needs no per-entry scrypt.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

/** Services an app password may be limited to: the ones users log in to (SMTP AUTH is `submission`). */
export const APP_PASSWORD_SERVICES = ['imap', 'pop3', 'submission'] as const;
export type AppPasswordService = (typeof APP_PASSWORD_SERVICES)[number];

/** Most app passwords one user may hold (bounds the check and the file). */
export const MAX_APP_PASSWORDS = 20;

export const appPasswordSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/, 'expected a name of letters, digits, space, dot, dash, underscore (at most 64)'),
    hash: z.string().regex(/^sha256\$[A-Za-z0-9+/]{43}=$/, 'expected sha256$<base64>'),
    services: z.array(z.enum(APP_PASSWORD_SERVICES)).min(1).optional(),
    createdAt: z.string().optional(),
  })
  .strict();
export type AppPasswordRecord = z.infer<typeof appPasswordSchema>;

/** Lower-case letters and digits without look-alikes (0/o, 1/l): 32 symbols, 5 bits each. */
const ALPHABET = 'abcdefghijkmnpqrstuvwxyz23456789';

/** A new app password: 24 symbols (120 bits) in groups of four, e.g. `abcd-efgh-…`. */
export function generateAppPassword(): string {
  const bytes = randomBytes(24);
  let s = '';
  for (let i = 0; i < 24; i++) s += (i > 0 && i % 4 === 0 ? '-' : '') + ALPHABET[bytes[i]! & 31];
  return s;
}

/** Dashes and case are ignored, so `ABCD EFGH…` typed from a screen still works. */
function canonical(password: string): string {
  return password.toLowerCase().replace(/[\s-]/g, '');
}

export function hashAppPassword(password: string): string {
  return `sha256$${createHash('sha256').update(canonical(password)).digest('base64')}`;
}

/**
 * The app password of `records` that `password` is, if any, and whether it may be used for `service`.
 * Every record is compared (no early exit), so timing does not tell which one matched.
 */
export function matchAppPassword(records: readonly AppPasswordRecord[], password: string, service: string | undefined): { record: AppPasswordRecord; allowed: boolean } | undefined {
  if (password.length > 256) return undefined;
  const digest = Buffer.from(hashAppPassword(password).slice('sha256$'.length), 'base64');
  let found: AppPasswordRecord | undefined;
  for (const r of records) {
    const stored = Buffer.from(r.hash.slice('sha256$'.length), 'base64');
    if (stored.length === digest.length && timingSafeEqual(stored, digest)) found = r;
  }
  if (!found) return undefined;
  const allowed = !found.services || (service !== undefined && (found.services as readonly string[]).includes(service));
  return { record: found, allowed };
}

/** `smtp` is accepted for `submission` (what users call it). */
export function parseServices(list: readonly string[]): AppPasswordService[] {
  const out = new Set<AppPasswordService>();
  for (const raw of list.flatMap((x) => x.split(','))) {
    const s = raw.trim().toLowerCase();
    if (s === '') continue;
    const service = s === 'smtp' ? 'submission' : s;
    if (!(APP_PASSWORD_SERVICES as readonly string[]).includes(service)) throw new Error(`unknown service ${raw}: expected imap, pop3 or smtp`);
    out.add(service as AppPasswordService);
  }
  return [...out];
}

interface HasAppPasswords {
  readonly address: string;
  appPasswords?: AppPasswordRecord[];
}

/**
 * Adds a named app password to `user` (a users-file entry) and returns the secret, to show once.
 * Throws when the name is taken or the user holds MAX_APP_PASSWORDS already.
 */
export function addAppPassword(user: HasAppPasswords, name: string, services: readonly AppPasswordService[], now = new Date()): string {
  const list = user.appPasswords ?? [];
  if (list.some((r) => r.name === name)) throw new Error(`${user.address} already has an app password named ${name}; revoke it first`);
  if (list.length >= MAX_APP_PASSWORDS) throw new Error(`${user.address} has ${MAX_APP_PASSWORDS} app passwords already (the most allowed)`);
  const password = generateAppPassword();
  const record = appPasswordSchema.parse({ name, hash: hashAppPassword(password), ...(services.length ? { services: [...services] } : {}), createdAt: now.toISOString() });
  user.appPasswords = [...list, record];
  return password;
}

/** Removes the app password named `name`; false when there was none. */
export function revokeAppPassword(user: HasAppPasswords, name: string): boolean {
  const list = user.appPasswords ?? [];
  const left = list.filter((r) => r.name !== name);
  if (left.length === list.length) return false;
  user.appPasswords = left.length ? left : undefined;
  return true;
}
