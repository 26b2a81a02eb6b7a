import { AUTHENTICATED, defineCommand } from '../command.js';
import { Args } from '../args.js';
import { enableCondstore, modesOf } from '../condstore.js';
import { enableRev2 } from '../rev2.js';
import type { ImapSession } from '../session.js';

/**
 * Extensions ENABLE can turn on, each with what enabling does. ENABLED lists only the names enabled by
 * this command (RFC 5161 §3.1); unknown ones are ignored. QRESYNC implies CONDSTORE (RFC 7162 §3.2.3).
 */
const ENABLERS: Record<string, (s: ImapSession) => void> = {
  CONDSTORE: (s) => enableCondstore(s),
  QRESYNC: (s) => {
    enableCondstore(s);
    modesOf(s).qresync = true;
  },
  // RFC 9051 §6.3.1: the session follows IMAP4rev2 from here on (rev2.ts).
  IMAP4REV2: (s) => enableRev2(s),
};
/** Names as ENABLED echoes them (the capability's own spelling). */
const SPELLING: Record<string, string> = { IMAP4REV2: 'IMAP4rev2' };

/** ENABLE (RFC 5161). */
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
  async handler(s, names) {
    const enabled: string[] = [];
    for (const raw of names) {
      const name = raw.toUpperCase();
      const on = ENABLERS[name];
      if (!on || enabled.includes(name)) continue;
      on(s);
      enabled.push(name);
    }
    s.write(`* ENABLED${enabled.map((n) => ` ${SPELLING[n] ?? n}`).join('')}\r\n`);
    return { text: 'ENABLE completed' };
  },
});
