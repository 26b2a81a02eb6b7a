/**
 * The journal of one daemon (audit.enabled): this node's spool under <dataDir>/journal/nodes/<node>
 * (node-spools.ts: nodes sharing a data dir never touch each other's spool) and, when an archive bucket is
 * known (the caller's target, else MAILFLEET_AUDIT_BUCKET / MAILFLEET_AUDIT_S3_ENDPOINT), its uploader and
 * the sweeper that ships spools other nodes left behind. Without a bucket the spool still journals every
 * message; the backlog metric shows it growing.
 */
import { hostname } from 'node:os';
import type { Registry } from 'prom-client';
import type { Logger } from '../log.js';
import type { Spec } from '../spec/schema.js';
import { s3TargetFromEnv, type S3Target } from './s3.js';
import { JournalSpool } from './spool.js';
import { JournalUploader } from './uploader.js';
import { lockNodeSpool, nodeSpoolDir, OrphanSpoolSweeper, spoolNodeName } from './node-spools.js';

export interface DaemonJournal {
  readonly spool: JournalSpool;
  readonly uploader?: JournalUploader;
  close(): Promise<void>;
}

export async function openDaemonJournal(
  audit: Spec['audit'],
  opts: {
    dataDir: string;
    logger: Logger;
    registry?: Registry;
    target?: S3Target;
    /** This node's spool name. @default - the host name */
    node?: string;
    /** Spool lock staleness (other nodes adopt a spool not refreshed this long). @default DEFAULT_SPOOL_STALE_MS */
    spoolStaleMs?: number;
    /** Time between sweeps for other nodes' spools. @default 60000 */
    sweepIntervalMs?: number;
  },
): Promise<DaemonJournal> {
  const nodeName = opts.node ?? hostname();
  const node = spoolNodeName(nodeName);
  const lock = await lockNodeSpool(opts.dataDir, node, opts.spoolStaleMs);
  let spool: JournalSpool;
  try {
    spool = await JournalSpool.open({ dir: nodeSpoolDir(opts.dataDir, node), node: nodeName });
  } catch (e) {
    await lock.release();
    throw e;
  }
  const target = opts.target ?? s3TargetFromEnv();
  const log = opts.logger.child({ component: 'journal' });
  if (!target) log.warn('audit journal: no archive bucket (MAILFLEET_AUDIT_BUCKET); entries stay in the local spool');
  const uploader = target
    ? new JournalUploader({
        spool,
        target,
        logger: log,
        registry: opts.registry,
        batchMaxEntries: audit.batchMaxEntries,
        batchMaxBytes: audit.batchMaxBytes,
        flushIntervalMs: audit.flushIntervalSeconds * 1000,
      })
    : undefined;
  uploader?.start();
  const sweeper = target
    ? new OrphanSpoolSweeper({
        dataDir: opts.dataDir,
        node,
        target,
        logger: log,
        staleMs: opts.spoolStaleMs,
        intervalMs: opts.sweepIntervalMs,
        uploader: { batchMaxEntries: audit.batchMaxEntries, batchMaxBytes: audit.batchMaxBytes },
      })
    : undefined;
  sweeper?.start(opts.sweepIntervalMs === undefined ? undefined : Math.min(5_000, opts.sweepIntervalMs));
  return {
    spool,
    uploader,
    async close() {
      await sweeper?.stop();
      await spool.close();
      await uploader?.stop();
      await lock.release();
    },
  };
}
