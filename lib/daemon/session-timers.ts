/**
 * The timers of an IMAP or POP3 session: before login an idle timeout AND an absolute deadline of the
 * same length (a byte trickle resets the idle timer, so without the deadline a slowloris could hold an
 * unauthenticated session forever); after login only the longer idle timeout. Either expiring calls
 * `onExpire` (the protocol's goodbye).
 */
export interface TimedSocket {
  setTimeout(ms: number): unknown;
  on(event: 'timeout' | 'close', listener: () => void): unknown;
}

export class SessionTimers {
  private deadline: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: TimedSocket,
    preAuthSeconds: number,
    onExpire: () => void,
  ) {
    socket.setTimeout(preAuthSeconds * 1000);
    socket.on('timeout', onExpire);
    this.deadline = setTimeout(onExpire, preAuthSeconds * 1000).unref();
    socket.on('close', () => clearTimeout(this.deadline));
  }

  /** Login succeeded: no deadline any more, the idle timeout becomes `idleSeconds`. */
  loggedIn(idleSeconds: number): void {
    clearTimeout(this.deadline);
    this.deadline = undefined;
    this.socket.setTimeout(idleSeconds * 1000);
  }
}
