/**
 * UIDVALIDITY values of one user's folders, from a counter kept beside them (`mailfleet-uidvalidity` in
 * the user's Maildir, under its own O_EXCL lock so nodes sharing the volume agree). Each new folder gets
 * max(last + 1, now in seconds): never a value any folder of the user had before, so a folder deleted
 * and created again under the same name (even within one second) never looks like the old one to a
 * client's cache (RFC 3501 §2.3.1.1). Dovecot keeps the same kind of counter.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { withLock } from './lock.js';

export const UIDVALIDITY_FILE = 'mailfleet-uidvalidity';
let tmpCounter = 0;

/** Takes the next UIDVALIDITY of the user whose Maildir is `maildir`. */
export function nextUidValidity(maildir: string): Promise<number> {
  const p = join(maildir, UIDVALIDITY_FILE);
  return withLock(`${p}.lock`, async () => {
    const last = Number((await readFile(p, 'utf8').catch(() => '0')).trim()) || 0;
    // 32 bits on the wire (nz-number): past that, wrap to 1 rather than send an invalid value.
    let next = Math.max(last + 1, Math.floor(Date.now() / 1000));
    if (next > 0xffffffff) next = 1;
    const tmp = `${p}.${process.pid}.${++tmpCounter}.tmp`;
    await writeFile(tmp, `${next}\n`, { mode: 0o600 });
    await rename(tmp, p);
    return next;
  });
}
