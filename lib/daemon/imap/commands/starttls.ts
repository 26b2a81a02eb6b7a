import { defineCommand } from '../command.js';
import { Args, bad } from '../args.js';

export const starttls = defineCommand({
  name: 'STARTTLS',
  states: ['not-authenticated'],
  parse: (t) => new Args(t).end(),
  async handler(s, _a, tag) {
    if (s.secure) throw bad('Already using TLS');
    if (!s.deps.tls) throw bad('STARTTLS is not available');
    s.write(`${tag} OK Begin TLS negotiation now\r\n`);
    s.startTls();
    return undefined;
  },
});
