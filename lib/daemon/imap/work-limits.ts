/**
 * The IMAP work limits of a daemon's settings, with the documented defaults under any that are missing:
 * a daemon-config JSON rendered by an older release (read without the schema) lacks them, and a missing
 * limit must not mean "no limit" (nor a keepalive timer of NaN ms).
 */
import { DEFAULT_IMAP_WORK_LIMITS } from '../../spec/defaults.js';

export type ImapWorkLimits = { -readonly [K in keyof typeof DEFAULT_IMAP_WORK_LIMITS]: number };

const cache = new WeakMap<object, ImapWorkLimits>();

export function imapWorkLimits(settings: Partial<ImapWorkLimits>): ImapWorkLimits {
  let w = cache.get(settings);
  if (!w) {
    w = { ...DEFAULT_IMAP_WORK_LIMITS };
    for (const k of Object.keys(w) as Array<keyof ImapWorkLimits>) {
      const v = settings[k];
      if (typeof v === 'number' && v > 0) w[k] = v;
    }
    cache.set(settings, w);
  }
  return w;
}
