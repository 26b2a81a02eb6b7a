import { AUTHENTICATED, defineCommand } from '../command.js';
import { Args } from '../args.js';

/** ENABLE (RFC 5161): no extension this server has needs enabling, so none is enabled. */
export const enable = defineCommand({
  name: 'ENABLE',
  states: AUTHENTICATED,
  parse(t) {
    const a = new Args(t);
    const names: string[] = [];
    names.push(a.atom('capability'));
    while (a.left > 0) names.push(a.atom('capability'));
    return names;
  },
  async handler(s) {
    s.write('* ENABLED\r\n');
    return { text: 'ENABLE completed' };
  },
});
