/**
 * Refusal logging that a flood cannot turn into a second flood: the first refusal of each reason on a
 * listener is logged at info at once, the rest are counted and reported in one info line per reason every
 * intervalMs (each one still at debug). A reason quiet for a whole interval logs its next refusal at once.
 */
import type { Logger } from '../log.js';

export interface RefusalLogProps {
  readonly logger: Logger;
  /**
   * How often counted refusals are reported.
   * @default 10000
   */
  readonly intervalMs?: number;
}

export interface RefusalFields {
  readonly listener: string;
  readonly remote: string;
  readonly reason: string;
}

export class RefusalLog {
  private readonly counts = new Map<string, { listener: string; reason: string; count: number }>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly props: RefusalLogProps) {}

  note(fields: RefusalFields, text: string): void {
    const key = `${fields.listener}\0${fields.reason}`;
    const c = this.counts.get(key);
    if (!c) {
      this.props.logger.info(fields, text);
      this.counts.set(key, { listener: fields.listener, reason: fields.reason, count: 0 });
      this.schedule();
      return;
    }
    c.count++;
    if (this.props.logger.isLevelEnabled('debug')) this.props.logger.debug(fields, text);
  }

  /** Reports what is counted now (also on close, so nothing counted is lost). */
  flush(): void {
    const seconds = (this.props.intervalMs ?? 10_000) / 1000;
    for (const [key, c] of this.counts) {
      if (c.count === 0) {
        this.counts.delete(key);
        continue;
      }
      this.props.logger.info({ listener: c.listener, reason: c.reason, refused: c.count, seconds }, 'connections refused since the last report');
      c.count = 0;
    }
    if (this.counts.size > 0) this.schedule();
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flush();
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, this.props.intervalMs ?? 10_000);
    this.timer.unref();
  }
}
