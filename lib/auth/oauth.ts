/**
 * Bearer tokens for OAUTHBEARER (RFC 7628) and XOAUTH2 (Google's): a JWT signed by the configured OIDC
 * issuer, checked with jose against the issuer's JWKS (found through /.well-known/openid-configuration,
 * keys cached by jose and re-fetched when a token names an unknown key). The token must be unexpired, for
 * our audience, from our issuer; the claim `userClaim` names the mailbox. A client that also names a user
 * (OAUTHBEARER `a=`, XOAUTH2 `user=`) must name the same one.
 *
 * An issuer that cannot be reached is an outage (DIRECTORY_UNAVAILABLE: a temporary failure), not a wrong
 * token, so it does not count toward the lockout window.
 */
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { MailfleetError } from '../errors.js';

export interface OidcSettings {
  /** Issuer URL, exactly as tokens carry it in `iss`. */
  readonly issuer: string;
  /** Required `aud` value of the tokens. */
  readonly audience: string;
  /**
   * Token claim holding the login (an address the directory knows).
   * @default 'email'
   */
  readonly userClaim?: string;
  /**
   * Clock skew allowed on `exp` and `nbf`.
   * @default 30
   */
  readonly clockToleranceSeconds?: number;
  /**
   * Timeout of the discovery and JWKS requests.
   * @default 5000
   */
  readonly timeoutMs?: number;
  /**
   * How long fetched keys are used before they are fetched again.
   * @default 600
   */
  readonly jwksCacheSeconds?: number;
}

export type TokenCheck = { readonly ok: true; readonly login: string } | { readonly ok: false; readonly why: string };

/** Longest bearer token accepted (a JWT with many claims is a few KiB). */
export const MAX_TOKEN_BYTES = 16 * 1024;

export class TokenVerifier {
  private keys?: Promise<JWTVerifyGetKey>;

  constructor(readonly settings: OidcSettings) {}

  /** The discovery document's URL, sent to clients in the RFC 7628 error. */
  get discoveryUrl(): string {
    return `${this.settings.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  }

  async verify(token: string): Promise<TokenCheck> {
    if (token.length === 0 || token.length > MAX_TOKEN_BYTES) return { ok: false, why: 'token missing or too long' };
    const keys = await this.jwks();
    try {
      const { payload } = await jwtVerify(token, keys, {
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        clockTolerance: this.settings.clockToleranceSeconds ?? 30,
        requiredClaims: ['exp'],
      });
      const login = payload[this.settings.userClaim ?? 'email'];
      if (typeof login !== 'string' || login === '') return { ok: false, why: `token has no ${this.settings.userClaim ?? 'email'} claim` };
      return { ok: true, login };
    } catch (e) {
      if (e instanceof joseErrors.JWKSTimeout || (e instanceof joseErrors.JOSEError && e.code === 'ERR_JOSE_GENERIC') || !(e instanceof joseErrors.JOSEError))
        throw new MailfleetError('DIRECTORY_UNAVAILABLE', `OIDC issuer keys unavailable: ${(e as Error).message}`, { cause: e });
      return { ok: false, why: (e as Error).message };
    }
  }

  private jwks(): Promise<JWTVerifyGetKey> {
    this.keys ??= this.discover().catch((e: unknown) => {
      this.keys = undefined; // try again on the next login
      throw new MailfleetError('DIRECTORY_UNAVAILABLE', `OIDC discovery failed at ${this.discoveryUrl}: ${(e as Error).message}`, { cause: e });
    });
    return this.keys;
  }

  private async discover(): Promise<JWTVerifyGetKey> {
    const timeoutMs = this.settings.timeoutMs ?? 5000;
    const res = await fetch(this.discoveryUrl, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const doc = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
    if (doc.issuer !== this.settings.issuer) throw new Error(`discovery names issuer ${String(doc.issuer)}, expected ${this.settings.issuer}`);
    if (typeof doc.jwks_uri !== 'string') throw new Error('discovery document has no jwks_uri');
    return createRemoteJWKSet(new URL(doc.jwks_uri), { timeoutDuration: timeoutMs, cacheMaxAge: (this.settings.jwksCacheSeconds ?? 600) * 1000 });
  }
}

/** RFC 7628 §3.1 client response: gs2 header, then ^A-separated key=value pairs, `auth=Bearer <token>`. */
export function parseOAuthBearer(msg: string): { authzid?: string; token: string } | undefined {
  const c1 = msg.indexOf(',');
  const c2 = c1 < 0 ? -1 : msg.indexOf(',', c1 + 1);
  if (c2 < 0 || msg.slice(0, c1) !== 'n' || msg[c2 + 1] !== '\x01') return undefined;
  const authz = msg.slice(c1 + 1, c2);
  if (authz !== '' && !authz.startsWith('a=')) return undefined;
  const token = bearerOf(msg.slice(c2 + 2).split('\x01'));
  if (token === undefined) return undefined;
  return { ...(authz ? { authzid: authz.slice(2).replaceAll('=2C', ',').replaceAll('=3D', '=') } : {}), token };
}

/** XOAUTH2: `user=<login>^Aauth=Bearer <token>^A^A`. */
export function parseXOAuth2(msg: string): { user: string; token: string } | undefined {
  const fields = msg.split('\x01');
  const user = fields.find((f) => f.startsWith('user='))?.slice(5);
  const token = bearerOf(fields);
  return user && token ? { user, token } : undefined;
}

function bearerOf(fields: readonly string[]): string | undefined {
  const auth = fields.find((f) => f.toLowerCase().startsWith('auth='));
  if (!auth) return undefined;
  const value = auth.slice(5);
  if (value.slice(0, 7).toLowerCase() !== 'bearer ') return undefined;
  const token = value.slice(7).trim();
  return token === '' ? undefined : token;
}

/** RFC 7628 §3.2.2 error challenge (JSON, sent base64): the client answers ^A and gets the failure. */
export function oauthBearerErrorChallenge(v: TokenVerifier): string {
  return JSON.stringify({ status: 'invalid_token', scope: 'openid email', 'openid-configuration': v.discoveryUrl });
}

/** XOAUTH2's error challenge (Google's shape); the client answers with an empty line. */
export function xoauth2ErrorChallenge(): string {
  return JSON.stringify({ status: '401', schemes: 'bearer', scope: 'openid email' });
}
