import { AUTHENTICATED, defineCommand } from '../command.js';
import { Args } from '../args.js';

export function parseName(t: ConstructorParameters<typeof Args>[0]): string {
  const a = new Args(t);
  const name = a.mailbox();
  a.end();
  return name;
}

export const subscribe = defineCommand({
  name: 'SUBSCRIBE',
  states: AUTHENTICATED,
  parse: parseName,
  async handler(s, name) {
    if (!(await s.deps.store.exists(s.user!, name))) return { status: 'NO', code: 'NONEXISTENT', text: 'No such mailbox' };
    await s.deps.store.subscribe(s.user!, name, true);
    return { text: 'SUBSCRIBE completed' };
  },
});
