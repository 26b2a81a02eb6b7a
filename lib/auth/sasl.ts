/**
 * The SASL mechanisms beyond PLAIN/LOGIN, protocol-neutral: SCRAM-SHA-256 (RFC 5802/7677), OAUTHBEARER
 * (RFC 7628) and XOAUTH2. A protocol starts an exchange, feeds it each decoded client response and writes
 * each challenge in its own syntax (IMAP `+ `, POP3 `+ `); the last step carries the login gate's outcome.
 *
 * Every credential check runs inside the login gate (lib/daemon/login-gate.ts) as the attempt's `verify`:
 * lockout, per-IP concurrency and the failure delay apply as for a password, and every failure (a wrong
 * proof, a bad or expired token, a malformed message) takes a failure slot.
 *
 * Offered only when usable: SCRAM where the directory holds SCRAM secrets and the main password is allowed
 * (auth.requireAppPasswords off: a SCRAM proof is the main password), tokens where auth.oidc is set.
 */
import type { AuthResult, IDirectory } from '../directory/types.js';
import type { ILoginGate, LoginAttempt, LoginOutcome } from '../daemon/login-gate.js';
import { oauthBearerErrorChallenge, parseOAuthBearer, parseXOAuth2, xoauth2ErrorChallenge, type TokenVerifier } from './oauth.js';
import { decoyScramSecret, parseClientFirst, parseScramSecret, ScramServerExchange } from './scram.js';

export type SaslMechanism = 'SCRAM-SHA-256' | 'OAUTHBEARER' | 'XOAUTH2';

/** The attempt without its credential: who connects where, and the service's failure delay. */
export type AttemptBase = Omit<LoginAttempt, 'login' | 'password' | 'verify'>;

export type SaslStep =
  /** Send this (raw; the protocol encodes it base64) and feed the client's answer to the next step. */
  | { readonly kind: 'challenge'; readonly data: string }
  /**
   * The exchange is over. With `final` and an ok outcome, send `final` as one more challenge and accept
   * only an empty answer before reporting success (RFC 5802 server-final in IMAP and POP3).
   */
  | { readonly kind: 'done'; readonly login: string; readonly outcome: LoginOutcome; readonly final?: string };

export interface ISaslExchange {
  step(response: string): Promise<SaslStep>;
}

export interface SaslMechanismsProps {
  readonly gate: ILoginGate;
  readonly directory: Pick<IDirectory, 'findUser' | 'supportsScram'>;
  /** @default - no token logins */
  readonly tokens?: TokenVerifier;
  /** Spec auth.scramSha256. @default true */
  readonly scramSha256?: boolean;
  /** Spec auth.requireAppPasswords: SCRAM (a proof of the main password) is then not offered. @default false */
  readonly requireAppPasswords?: boolean;
}

const failed: AuthResult = { ok: false, reason: 'bad-credentials' };

export class SaslMechanisms {
  constructor(private readonly props: SaslMechanismsProps) {}

  /** Mechanisms to advertise (besides PLAIN/LOGIN) on a protocol that can run multi-step exchanges. */
  names(): SaslMechanism[] {
    const out: SaslMechanism[] = [];
    if (this.scramAvailable()) out.push('SCRAM-SHA-256');
    if (this.props.tokens && this.props.directory.findUser) out.push('OAUTHBEARER', 'XOAUTH2');
    return out;
  }

  /** True when token logins (XOAUTH2 for SMTP) are configured. */
  get tokens(): boolean {
    return this.props.tokens !== undefined && this.props.directory.findUser !== undefined;
  }

  /** The token checker, for the discovery URL in error challenges. */
  get verifier(): TokenVerifier | undefined {
    return this.props.tokens;
  }

  /** A new exchange, or undefined when the mechanism is not offered. */
  start(mechanism: string, base: AttemptBase): ISaslExchange | undefined {
    const m = mechanism.toUpperCase();
    if (!(this.names() as string[]).includes(m)) return undefined;
    if (m === 'SCRAM-SHA-256') return new ScramExchange(this.props, base);
    return new TokenExchange(this, m === 'OAUTHBEARER' ? 'OAUTHBEARER' : 'XOAUTH2', base);
  }

  /**
   * One bearer-token login through the gate. `login`: the user the client named (counts toward the
   * per-login lockout; '' when it named none).
   */
  checkToken(base: AttemptBase, login: string, token: string | undefined): Promise<LoginOutcome> {
    const verify = async (): Promise<AuthResult> => {
      const { tokens, directory } = this.props;
      if (!tokens || !directory.findUser || token === undefined) return failed;
      const check = await tokens.verify(token);
      if (!check.ok) return failed;
      if (login !== '' && login.toLowerCase() !== check.login.toLowerCase()) return failed;
      const found = await directory.findUser(check.login);
      if (!found) return { ok: false, reason: 'unknown-user' };
      if (found.disabled) return { ok: false, reason: 'disabled' };
      return { ok: true, user: found.user, via: 'token' };
    };
    return this.props.gate.login({ ...base, login, password: '', verify });
  }

  private scramAvailable(): boolean {
    const { directory, scramSha256 = true, requireAppPasswords = false } = this.props;
    return scramSha256 && !requireAppPasswords && directory.findUser !== undefined && (directory.supportsScram?.() ?? false);
  }
}

/** A malformed message still goes through the gate: it counts as a failure. */
function refuse(gate: ILoginGate, base: AttemptBase, login: string): Promise<LoginOutcome> {
  return gate.login({ ...base, login, password: '', verify: async () => failed });
}

class ScramExchange implements ISaslExchange {
  private server?: ScramServerExchange;
  private login = '';
  private real = false;
  private record?: Awaited<ReturnType<NonNullable<IDirectory['findUser']>>>;

  constructor(
    private readonly props: SaslMechanismsProps,
    private readonly base: AttemptBase,
  ) {}

  async step(response: string): Promise<SaslStep> {
    const { gate } = this.props;
    if (!this.server) {
      const first = parseClientFirst(response);
      if ('error' in first) return { kind: 'done', login: '', outcome: await refuse(gate, this.base, '') };
      this.login = first.username;
      // Acting for another user (authzid) is not supported.
      if (first.authzid !== undefined && first.authzid.toLowerCase() !== first.username.toLowerCase())
        return { kind: 'done', login: this.login, outcome: await refuse(gate, this.base, this.login) };
      try {
        this.record = await this.props.directory.findUser!(first.username);
      } catch (error) {
        return { kind: 'done', login: this.login, outcome: { kind: 'unavailable', error } };
      }
      const secret = this.record?.scramSha256 ? parseScramSecret(this.record.scramSha256) : undefined;
      this.real = secret !== undefined;
      this.server = new ScramServerExchange(first, secret ?? decoyScramSecret(first.username));
      return { kind: 'challenge', data: this.server.serverFirst };
    }
    let serverFinal: string | undefined;
    const server = this.server;
    const verify = async (): Promise<AuthResult> => {
      const r = server.finish(response);
      if (!r.ok || !this.real || !this.record) return failed;
      if (this.record.disabled) return { ok: false, reason: 'disabled' };
      serverFinal = r.serverFinal;
      return { ok: true, user: this.record.user, via: 'scram-sha-256' };
    };
    const outcome = await gate.login({ ...this.base, login: this.login, password: '', verify });
    return { kind: 'done', login: this.login, outcome, ...(serverFinal ? { final: serverFinal } : {}) };
  }
}

class TokenExchange implements ISaslExchange {
  /** A failed outcome held back while the client reads the error challenge (RFC 7628 §3.2.3). */
  private pending?: { login: string; outcome: LoginOutcome };

  constructor(
    private readonly mechanisms: SaslMechanisms,
    private readonly mechanism: 'OAUTHBEARER' | 'XOAUTH2',
    private readonly base: AttemptBase,
  ) {}

  async step(response: string): Promise<SaslStep> {
    if (this.pending) return { kind: 'done', ...this.pending };
    let login = '';
    let token: string | undefined;
    if (this.mechanism === 'OAUTHBEARER') {
      const m = parseOAuthBearer(response);
      login = m?.authzid ?? '';
      token = m?.token;
    } else {
      const m = parseXOAuth2(response);
      login = m?.user ?? '';
      token = m?.token;
    }
    const outcome = await this.mechanisms.checkToken(this.base, login, token);
    if (outcome.kind !== 'failed' || token === undefined) return { kind: 'done', login, outcome };
    this.pending = { login, outcome };
    return { kind: 'challenge', data: this.mechanism === 'OAUTHBEARER' ? oauthBearerErrorChallenge(this.mechanisms.verifier!) : xoauth2ErrorChallenge() };
  }
}
