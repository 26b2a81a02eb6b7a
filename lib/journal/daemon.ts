/**
 * The journal of one daemon (audit.enabled): the spool under <dataDir>/journal and, when an archive
 * bucket is known (the caller's target, else MAILFLEET_AUDIT_BUCKET / MAILFLEET_AUDIT_S3_ENDPOINT), its
 * uploader. Without a bucket the spool still journals every message; the backlog metric shows it growing.
 */
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import type { Logger } from '../log.js';
import type { Spec } from '../spec/schema.js';
import { s3TargetFromEnv, type S3Target } from './s3.js';
import { JournalSpool } from './spool.js';
import { JournalUploader } from './uploader.js';

export interface DaemonJournal {
  readonly spool: JournalSpool;
  readonly uploader?: JournalUploader;
  close(): Promise<void>;
}

export async function openDaemonJournal(audit: Spec['audit'], opts: { dataDir: string; logger: Logger; registry?: Registry; target?: S3Target }): Promise<DaemonJournal> {
  const spool = await JournalSpool.open({ dir: join(opts.dataDir, 'journal') });
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
  return {
    spool,
    uploader,
    async close() {
      await spool.close();
      await uploader?.stop();
    },
  };
}
