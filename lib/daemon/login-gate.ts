/**
 * The one way SMTP AUTH, IMAP LOGIN/AUTHENTICATE and POP3 USER/PASS/AUTH check a password: the
 * brute-force lockout first (lib/limits/auth-failures.ts; a locked IP or login is refused without asking
 * the directory), then the directory, then on failure the service's delay and the failure count. Each
 * protocol only maps the outcome to its reply (lockout and directory outage are temporary: SMTP 454 4.7.0,
 * IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP]; a wrong password is SMTP 535, IMAP [AUTHENTICATIONFAILED],
 * POP3 [AUTH]).
 */
import type { Counter } from 'prom-client';
import type { AuthResult, DirectoryUser, IDirectory } from '../directory/types.js';
import { AuthFailureWindow, type IAuthFailures, type Lockout, type LockoutScope } from '../limits/auth-failures.js';
import type { Service } from '../spec/schema.js';

export type LoginOutcome =
  | { readonly kind: 'ok'; readonly user: DirectoryUser }
  /** Wrong password, unknown or disabled user: answered after the failure delay. */
  | { readonly kind: 'failed'; readonly reason: Extract<AuthResult, { ok: false }>['reason'] }
  /** Too many recent failures for this IP or login: refused without checking the password. */
  | { readonly kind: 'locked'; readonly lockout: Lockout }
  /** The directory could not answer. */
  | { readonly kind: 'unavailable'; readonly error: unknown };

export interface LoginAttempt {
  readonly service: Service;
  readonly login: string;
  readonly password: string;
  readonly remoteAddress: string;
  /** The service's pause before a failure is answered (slows guessing inside one connection). */
  readonly failureDelayMs: number;
}

export interface ILoginGate {
  attempt(a: LoginAttempt): Promise<LoginOutcome>;
}

export interface LoginGateProps {
  readonly directory: Pick<IDirectory, 'authenticate'>;
  /** In process, or fleet-wide through Redis (lib/limits/auth-failures-redis.ts). @default - a window with its documented defaults */
  readonly failures?: IAuthFailures;
  /** Failed logins by service (wrong password; not lockouts or outages). */
  readonly failuresTotal?: Counter<'service'>;
  /** Logins refused because of a lockout, by service and scope. */
  readonly lockoutsTotal?: Counter<'service' | 'scope'>;
}

export class LoginGate implements ILoginGate {
  private readonly failures: IAuthFailures;

  constructor(private readonly props: LoginGateProps) {
    this.failures = props.failures ?? new AuthFailureWindow();
  }

  async attempt(a: LoginAttempt): Promise<LoginOutcome> {
    const locked = await this.failures.check(a.remoteAddress, a.login);
    if (locked) return this.refuse(a, locked);
    let result: AuthResult;
    try {
      result = await this.props.directory.authenticate(a.login, a.password);
    } catch (error) {
      return { kind: 'unavailable', error };
    }
    if (result.ok) {
      await this.failures.recordSuccess(a.login);
      return { kind: 'ok', user: result.user };
    }
    this.props.failuresTotal?.inc({ service: a.service });
    // Counted before the pause, so parallel connections of one attacker see the lockout at once.
    await this.failures.recordFailure(a.remoteAddress, a.login);
    if (a.failureDelayMs > 0) await new Promise((r) => setTimeout(r, a.failureDelayMs).unref());
    return { kind: 'failed', reason: result.reason };
  }

  private refuse(a: LoginAttempt, lockout: Lockout): LoginOutcome {
    this.props.lockoutsTotal?.inc({ service: a.service, scope: lockout.scope });
    return { kind: 'locked', lockout };
  }
}

/** The text every protocol puts after its temporary-failure code. */
export function lockoutText(l: Lockout): string {
  const who: Record<LockoutScope, string> = { ip: 'from your address', user: 'for this account' };
  return `Too many failed logins ${who[l.scope]}, try again in ${l.retryAfterSeconds} seconds`;
}
