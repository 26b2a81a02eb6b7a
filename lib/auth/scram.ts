/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) with node:crypto: the stored secret and the server side of the
 * exchange. The directory keeps StoredKey and ServerKey, never the password:
 *
 *   scram-sha-256$<iterations>$<salt b64>$<StoredKey b64>$<ServerKey b64>      (ours)
 *   {SCRAM-SHA-256}<iterations>,<salt b64>,<StoredKey b64>,<ServerKey b64>     (Dovecot's, e.g. from LDAP)
 *
 * No channel binding (-PLUS is not offered): a client-first gs2 flag `p=` is refused, `y` and `n` accepted.
 * Unknown logins get a salt derived from a per-process key and the login, so the server-first message does
 * not tell who exists; the proof then fails like a wrong password.
 */
import { createHash, createHmac, pbkdf2 as pbkdf2Cb, randomBytes, timingSafeEqual } from 'node:crypto';

/** PBKDF2 rounds for new secrets (RFC 7677 §4: at least 4096). */
export const SCRAM_ITERATIONS = 4096;
/** Secrets with more rounds than this are refused (a client could be made to spin, and so would we). */
export const MAX_SCRAM_ITERATIONS = 1_000_000;
/** Longest SCRAM message accepted from a client. */
export const MAX_SCRAM_MESSAGE_BYTES = 4096;

export interface ScramSecret {
  readonly iterations: number;
  readonly salt: Buffer;
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

function pbkdf2(password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  return new Promise((resolve, reject) => pbkdf2Cb(password, salt, iterations, 32, 'sha256', (e, k) => (e ? reject(e) : resolve(k))));
}
const hmac = (key: Buffer, data: string | Buffer) => createHmac('sha256', key).update(data).digest();
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest();

/** RFC 3454 C.1.2 non-ASCII spaces (mapped to a space) and B.1 "commonly mapped to nothing" (dropped). */
const SASLPREP_SPACES = new Set(['\u00A0', '\u1680', '\u2000', '\u2001', '\u2002', '\u2003', '\u2004', '\u2005', '\u2006', '\u2007', '\u2008', '\u2009', '\u200A', '\u200B', '\u202F', '\u205F', '\u3000']);
const SASLPREP_DROPPED = new Set(['\u00AD', '\u034F', '\u1806', '\u180B', '\u180C', '\u180D', '\u200C', '\u200D', '\u2060', '\uFE00', '\uFE0F', '\uFEFF']);

/**
 * RFC 4013 SASLprep, the common part: NFKC and non-ASCII spaces mapped to a space. Passwords with
 * prohibited characters are rare; both sides of a test use the same rule.
 */
export function saslPrep(s: string): string {
  let out = '';
  for (const ch of s) {
    if (SASLPREP_SPACES.has(ch)) out += ' ';
    else if (!SASLPREP_DROPPED.has(ch)) out += ch;
  }
  return out.normalize('NFKC');
}

export async function scramSecretFromPassword(password: string, iterations = SCRAM_ITERATIONS, salt = randomBytes(16)): Promise<ScramSecret> {
  const salted = await pbkdf2(saslPrep(password), salt, iterations);
  return { iterations, salt, storedKey: sha256(hmac(salted, 'Client Key')), serverKey: hmac(salted, 'Server Key') };
}

export function encodeScramSecret(s: ScramSecret): string {
  return `scram-sha-256$${s.iterations}$${s.salt.toString('base64')}$${s.storedKey.toString('base64')}$${s.serverKey.toString('base64')}`;
}

/** Our format or Dovecot's; undefined for anything else (including a secret with absurd parameters). */
export function parseScramSecret(text: string): ScramSecret | undefined {
  let parts: string[];
  if (text.startsWith('scram-sha-256$')) parts = text.slice('scram-sha-256$'.length).split('$');
  else if (text.toUpperCase().startsWith('{SCRAM-SHA-256}')) parts = text.slice('{SCRAM-SHA-256}'.length).split(',');
  else return undefined;
  if (parts.length !== 4 || !/^\d{1,7}$/.test(parts[0]!)) return undefined;
  const iterations = Number(parts[0]);
  const [salt, storedKey, serverKey] = parts.slice(1).map((p) => Buffer.from(p, 'base64'));
  if (iterations < 1 || iterations > MAX_SCRAM_ITERATIONS || salt!.length < 8 || storedKey!.length !== 32 || serverKey!.length !== 32) return undefined;
  return { iterations, salt: salt!, storedKey: storedKey!, serverKey: serverKey! };
}

/** Checks a plaintext password (SASL PLAIN, LOGIN) against a SCRAM secret. */
export async function verifyPasswordWithScram(password: string, s: ScramSecret): Promise<boolean> {
  const salted = await pbkdf2(saslPrep(password), s.salt, s.iterations);
  return timingSafeEqual(sha256(hmac(salted, 'Client Key')), s.storedKey);
}

/** Per process: salts for unknown logins are stable within a run, unguessable across runs. */
const FAKE_SALT_KEY = randomBytes(32);

/** A secret no proof matches, with a salt that looks like a real one and stays the same per login. */
export function decoyScramSecret(login: string, iterations = SCRAM_ITERATIONS): ScramSecret {
  return { iterations, salt: hmac(FAKE_SALT_KEY, `salt:${login.toLowerCase()}`).subarray(0, 16), storedKey: randomBytes(32), serverKey: randomBytes(32) };
}

/** `=2C` → `,` and `=3D` → `=` (RFC 5802 saslname); undefined when an `=` escapes anything else. */
function decodeSaslName(s: string): string | undefined {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '=') {
      out += c;
      continue;
    }
    const esc = s.slice(i + 1, i + 3);
    if (esc === '2C') out += ',';
    else if (esc === '3D') out += '=';
    else return undefined;
    i += 2;
  }
  return out;
}

/** `a=b,c=d` attributes, in order; undefined when a part is not `x=...`. */
function attributes(s: string): Array<[string, string]> | undefined {
  const out: Array<[string, string]> = [];
  for (const part of s.split(',')) {
    if (part.length < 2 || part[1] !== '=') return undefined;
    out.push([part[0]!, part.slice(2)]);
  }
  return out;
}

export interface ScramClientFirst {
  /** The gs2 header as sent (`n,,`, `y,,`, `n,a=user,`): echoed back base64 in the client-final `c=`. */
  readonly gs2Header: string;
  readonly authzid?: string;
  readonly username: string;
  readonly clientNonce: string;
  readonly bare: string;
}

export type ScramError = 'invalid-encoding' | 'channel-bindings-dont-match' | 'server-does-support-channel-binding' | 'channel-binding-not-supported' | 'extensions-not-supported' | 'invalid-proof' | 'other-error';

export function parseClientFirst(msg: string): ScramClientFirst | { error: ScramError } {
  if (msg.length > MAX_SCRAM_MESSAGE_BYTES) return { error: 'other-error' };
  const c1 = msg.indexOf(',');
  const c2 = c1 < 0 ? -1 : msg.indexOf(',', c1 + 1);
  if (c2 < 0) return { error: 'invalid-encoding' };
  const flag = msg.slice(0, c1);
  if (flag.startsWith('p=')) return { error: 'channel-binding-not-supported' };
  if (flag !== 'n' && flag !== 'y') return { error: 'invalid-encoding' };
  const authzField = msg.slice(c1 + 1, c2);
  let authzid: string | undefined;
  if (authzField !== '') {
    if (!authzField.startsWith('a=')) return { error: 'invalid-encoding' };
    authzid = decodeSaslName(authzField.slice(2));
    if (authzid === undefined) return { error: 'invalid-encoding' };
  }
  const bare = msg.slice(c2 + 1);
  const attrs = attributes(bare);
  if (!attrs || attrs.length < 2) return { error: 'invalid-encoding' };
  if (attrs[0]![0] === 'm') return { error: 'extensions-not-supported' };
  const [[nk, nv], [rk, rv]] = attrs as [[string, string], [string, string]];
  if (nk !== 'n' || rk !== 'r' || rv === '' || /[^\x21-\x2B\x2D-\x7E]/.test(rv)) return { error: 'invalid-encoding' };
  const username = decodeSaslName(nv);
  if (username === undefined || username === '') return { error: 'invalid-encoding' };
  return { gs2Header: msg.slice(0, c2 + 1), authzid, username: saslPrep(username), clientNonce: rv, bare };
}

/**
 * The server side of one exchange, after the client-first message: `serverFirst` to send, then `finish`
 * with the client-final message. Pure apart from the nonce; the caller runs `finish` inside the login gate.
 */
export class ScramServerExchange {
  readonly serverFirst: string;
  private readonly nonce: string;

  constructor(
    readonly client: ScramClientFirst,
    private readonly secret: ScramSecret,
    /** @default - 18 random bytes, base64 */
    serverNonce: string = randomBytes(18).toString('base64'),
  ) {
    this.nonce = client.clientNonce + serverNonce;
    this.serverFirst = `r=${this.nonce},s=${secret.salt.toString('base64')},i=${secret.iterations}`;
  }

  /** Checks the client's proof; on success, the server-final message (`v=…`) the client verifies us with. */
  finish(clientFinal: string): { ok: true; serverFinal: string } | { ok: false; error: ScramError } {
    if (clientFinal.length > MAX_SCRAM_MESSAGE_BYTES) return { ok: false, error: 'other-error' };
    const p = clientFinal.lastIndexOf(',p=');
    if (p < 0) return { ok: false, error: 'invalid-encoding' };
    const withoutProof = clientFinal.slice(0, p);
    const attrs = attributes(withoutProof);
    if (!attrs || attrs.length < 2 || attrs[0]![0] !== 'c' || attrs[1]![0] !== 'r') return { ok: false, error: 'invalid-encoding' };
    if (attrs[0]![1] !== Buffer.from(this.client.gs2Header).toString('base64')) return { ok: false, error: 'channel-bindings-dont-match' };
    if (attrs[1]![1] !== this.nonce) return { ok: false, error: 'invalid-proof' };
    const proof = Buffer.from(clientFinal.slice(p + 3), 'base64');
    if (proof.length !== 32) return { ok: false, error: 'invalid-proof' };
    const authMessage = `${this.client.bare},${this.serverFirst},${withoutProof}`;
    const signature = hmac(this.secret.storedKey, authMessage);
    const clientKey = Buffer.alloc(32);
    for (let i = 0; i < 32; i++) clientKey[i] = proof[i]! ^ signature[i]!;
    if (!timingSafeEqual(sha256(clientKey), this.secret.storedKey)) return { ok: false, error: 'invalid-proof' };
    return { ok: true, serverFinal: `v=${hmac(this.secret.serverKey, authMessage).toString('base64')}` };
  }
}
