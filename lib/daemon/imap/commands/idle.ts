import { defineCommand, AUTHENTICATED } from '../command.js';
import { Args } from '../args.js';
import { imapWorkLimits } from '../work-limits.js';

/**
 * IDLE (RFC 2177). While idling the session watches its mailbox: a same-node delivery publishes an
 * event and `* N EXISTS` goes out at once; changes from other nodes arrive with the poll
 * (imap.pollIntervalSeconds). The socket idle timeout (imap.idleTimeoutSeconds) still applies.
 *
 * Every imap.keepaliveSeconds (less up to 10% jitter, so sessions that started together do not write
 * together) an idle client gets `* OK Still here`, as Dovecot sends: an NLB drops a TCP flow silent for
 * 350 s, and a phone's NAT sooner, which would cut IDLE without either side noticing.
 */
export const idle = defineCommand({
  name: 'IDLE',
  states: AUTHENTICATED,
  parse: (t) => new Args(t).end(),
  async handler(s) {
    s.write('+ idling\r\n');
    const keepalive = startKeepalive(imapWorkLimits(s.deps.settings).keepaliveSeconds, () => s.write('* OK Still here\r\n'));
    const sel = s.selected;
    let unwatch: (() => void) | undefined;
    if (sel && s.state === 'selected') {
      await s.flushUpdates(true, false);
      // One flush at a time; a change during a flush schedules one more.
      let flushing = false;
      let again = false;
      const flush = (): void => {
        if (flushing) {
          again = true;
          return;
        }
        flushing = true;
        void s.flushUpdates(true, false).finally(() => {
          flushing = false;
          if (again) {
            again = false;
            flush();
          }
        });
      };
      unwatch = sel.handle.watch(flush);
    }
    try {
      const line = await s.readLine();
      if (line === undefined) return undefined;
      if (line.trim().toUpperCase() !== 'DONE') return { status: 'NO', text: 'Expected DONE' };
      return { text: 'IDLE terminated' };
    } finally {
      keepalive();
      unwatch?.();
    }
  },
});

/** Calls `send` every `seconds` less up to 10% jitter until the returned stop is called. */
function startKeepalive(seconds: number, send: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    timer = setTimeout(() => {
      send();
      arm();
    }, seconds * 1000 * (1 - Math.random() * 0.1));
    timer.unref();
  };
  arm();
  return () => clearTimeout(timer);
}
