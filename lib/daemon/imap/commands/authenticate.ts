import { defineCommand } from '../command.js';
import { Args } from '../args.js';

/** A client response: base64, `=` for empty (SASL-IR, RFC 4959). */
function decode(response: string): string {
  return response === '=' ? '' : Buffer.from(response, 'base64').toString('utf8');
}

/**
 * AUTHENTICATE (RFC 3501 §6.2.2), with or without an initial response (SASL-IR, RFC 4959): PLAIN
 * (RFC 4616) here; SCRAM-SHA-256, OAUTHBEARER and XOAUTH2 through lib/auth/sasl.ts when offered.
 */
export const authenticate = defineCommand({
  name: 'AUTHENTICATE',
  states: ['not-authenticated'],
  parse(t) {
    const a = new Args(t);
    const mechanism = a.atom('mechanism').toUpperCase();
    const initial = a.left > 0 ? a.atom('initial response') : undefined;
    a.end();
    return { mechanism, initial };
  },
  async handler(s, a) {
    const exchange = a.mechanism === 'PLAIN' ? undefined : s.deps.sasl?.start(a.mechanism, s.loginBase());
    if (a.mechanism !== 'PLAIN' && !exchange) return { status: 'NO', code: 'CANNOT', text: 'Unsupported authentication mechanism' };
    if (!s.authAllowed()) return { status: 'NO', code: 'PRIVACYREQUIRED', text: 'Use STARTTLS before AUTHENTICATE' };
    /** Sends a challenge and reads the answer; undefined when the connection went away. */
    const ask = async (challenge: string) => {
      s.write(`+ ${Buffer.from(challenge).toString('base64')}\r\n`);
      return s.readLine();
    };
    let response = a.initial ?? (await ask(''));
    if (!exchange) {
      if (response === undefined) return undefined;
      if (response === '*') return { status: 'NO', text: 'Authentication cancelled' };
      const [, user, password] = decode(response).split('\u0000');
      if (user === undefined || password === undefined) return { status: 'NO', code: 'AUTHENTICATIONFAILED', text: 'Invalid SASL PLAIN response' };
      return s.login(user, password);
    }
    for (;;) {
      if (response === undefined) return undefined;
      if (response === '*') return { status: 'NO', text: 'Authentication cancelled' };
      const step = await exchange.step(decode(response));
      if (step.kind === 'challenge') {
        response = await ask(step.data);
        continue;
      }
      const final = step.final;
      // SCRAM's server-final goes out as a last challenge; the client answers empty to accept it.
      const confirm = final === undefined ? undefined : async () => (await ask(final)) === '';
      return s.completeLogin(step.login, step.outcome, confirm);
    }
  },
});
