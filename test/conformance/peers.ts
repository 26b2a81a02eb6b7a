/**
 * The two servers every conformance file runs its scripts against: mailfleetd (the test harness) and
 * Dovecot from Debian (bench/lib/dovecot.ts), started together before the file's tests and stopped
 * after. One helper instead of the same start-up repeated in each file.
 */
import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDovecot, type RunningDovecot } from '../../bench/lib/dovecot.js';
import { PASSWORD, startImapHarness, type Harness } from '../daemon/mail-harness.js';

export interface Peers {
  /** mailfleetd; set once the file's before() hook has run. */
  mf: Harness;
  /** Dovecot; set once the file's before() hook has run. */
  dc: RunningDovecot;
}

/**
 * Registers before/after hooks that start both servers with the same users (password PASSWORD) and
 * stop them. Call at module level; read the fields inside tests.
 */
export function usePeers(opts: {
  readonly users: readonly string[];
  /** A name for Dovecot's temp directory. */
  readonly label: string;
  /**
   * Load Dovecot's imap_zlib (COMPRESS=DEFLATE).
   * @default false
   */
  readonly compress?: boolean;
}): Peers {
  const peers = {} as Peers;
  let dir = '';
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), `mf-conf-${opts.label}-`));
    [peers.mf, peers.dc] = await Promise.all([
      startImapHarness({ users: [...opts.users] }),
      startDovecot({ dir, users: opts.users.map((address) => ({ address, password: PASSWORD })), compress: opts.compress }),
    ]);
  });
  after(async () => {
    await Promise.all([peers.mf?.close(), peers.dc?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return peers;
}

/**
 * Runs one script on both servers (`run` gets the port; the caller picks a fresh user for it) and asserts
 * that the normalised transcripts are equal step by step (each step's first element is its command line).
 * Returns mailfleetd's transcript for further checks.
 */
export async function conformBoth<T extends readonly unknown[]>(peers: Peers, run: (port: number) => Promise<readonly T[]>): Promise<readonly T[]> {
  const [ours, theirs] = await Promise.all([run(peers.mf.port), run(peers.dc.port)]);
  for (let i = 0; i < theirs.length; i++)
    assert.deepEqual(ours[i], theirs[i], `step ${i + 1}: ${String(theirs[i]![0])}\nmailfleetd: ${JSON.stringify(ours[i])}\ndovecot:    ${JSON.stringify(theirs[i])}`);
  assert.equal(ours.length, theirs.length);
  return ours;
}
