import { defineCommand } from '../command.js';
import { Args } from '../args.js';

/** AUTHENTICATE PLAIN (RFC 4616), with or without an initial response (SASL-IR, RFC 4959). */
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
    if (a.mechanism !== 'PLAIN') return { status: 'NO', code: 'CANNOT', text: 'Unsupported authentication mechanism' };
    if (!s.authAllowed()) return { status: 'NO', code: 'PRIVACYREQUIRED', text: 'Use STARTTLS before AUTHENTICATE' };
    let response = a.initial;
    if (response === undefined) {
      s.write('+ \r\n');
      response = await s.readLine();
      if (response === undefined) return undefined;
    }
    if (response === '*') return { status: 'NO', text: 'Authentication cancelled' };
    const decoded = response === '=' ? '' : Buffer.from(response, 'base64').toString('utf8');
    const [, user, password] = decoded.split('\u0000');
    if (user === undefined || password === undefined) return { status: 'NO', code: 'AUTHENTICATIONFAILED', text: 'Invalid SASL PLAIN response' };
    return s.login(user, password);
  },
});
