/**
 * Long per-message loops (SEARCH, FETCH) over cached data never wait on I/O: their awaits resolve as
 * microtasks, so without a break one SEARCH over 100,000 messages held every other session of the
 * process. pause() lets the event loop run (timers, other sockets) once a slice has used its time.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

/** Work between two breaks, in ms: a NOOP takes several loop turns (socket, stat, write), each waits one slice. */
const SLICE_MS = 3;

export class TimeSlice {
  private started = performance.now();
  private calls = 0;

  /** Cheap to call per item: looks at the clock every 8 calls. */
  async pause(): Promise<void> {
    if (++this.calls % 8 !== 0) return;
    if (performance.now() - this.started < SLICE_MS) return;
    await nextTurn();
    this.started = performance.now();
  }
}
