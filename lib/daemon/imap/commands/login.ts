import { defineCommand } from '../command.js';
import { Args } from '../args.js';

export const login = defineCommand({
  name: 'LOGIN',
  states: ['not-authenticated'],
  parse(t) {
    const a = new Args(t);
    const user = a.astring('user name');
    const password = a.astring('password');
    a.end();
    return { user, password };
  },
  async handler(s, a) {
    if (!s.authAllowed()) return { status: 'NO', code: 'PRIVACYREQUIRED', text: 'Use STARTTLS before LOGIN' };
    return s.login(a.user, a.password);
  },
});
