/**
 * `mailfleet archive search|export`: the audit journal for auditors (lib/journal/archive.ts). Reads the
 * archive bucket (--bucket/--endpoint, else MAILFLEET_AUDIT_BUCKET/MAILFLEET_AUDIT_S3_ENDPOINT, else the
 * local platform's s3rver) and the local spool's entries not yet shipped; every run is written to the
 * access log before any result is shown.
 */
import { journalRoot, journalSpoolDirs } from '../../journal/node-spools.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { MailfleetError } from '../../errors.js';
import { Archive, type ArchiveQuery } from '../../journal/archive.js';
import { LOCAL_S3_CREDENTIALS } from '../../journal/local-s3.js';
import { s3TargetFromEnv, type S3Target } from '../../journal/s3.js';
import { loadDaemonConfig } from '../../daemon/run.js';
import { table } from '../../plan/format.js';
import { LOCAL_AUDIT_BUCKET, LOCAL_S3_ENDPOINT_FILE } from '../../platform/local.js';
import { runAction } from '../run.js';
import type { RegisterCommand } from '../types.js';

interface ArchiveOptions {
  from?: string;
  to?: string;
  since?: string;
  until?: string;
  messageId?: string;
  bucket?: string;
  endpoint?: string;
  prefix?: string;
  spool?: string[];
  config: string;
  dataDir?: string;
  json?: boolean;
}

function date(flag: string, v: string | undefined): Date | undefined {
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  if (!Number.isFinite(t)) throw new MailfleetError('BAD_REQUEST', `--${flag}: not a date (ISO 8601, e.g. 2026-12-01 or 2026-12-01T10:00:00Z): ${v}`, { status: 400 });
  return new Date(t);
}

function query(o: ArchiveOptions): ArchiveQuery {
  return { from: o.from, to: o.to, since: date('since', o.since), until: date('until', o.until), messageId: o.messageId };
}

/** The bucket: flags, else the environment, else the running local platform's s3rver; and the spools to include. */
function archiveOf(o: ArchiveOptions): Archive {
  let target: S3Target | undefined = o.bucket ? { bucket: o.bucket, ...(o.endpoint ? { endpoint: o.endpoint } : {}), ...(o.prefix ? { prefix: o.prefix } : {}) } : s3TargetFromEnv();
  const spools = [...(o.spool ?? [])];
  let dataDir: string | undefined;
  try {
    dataDir = loadDaemonConfig({ config: o.config, dataDir: o.dataDir }).dataDir;
  } catch {
    // No spec here: bucket and --spool only.
  }
  let accessLogDir: string | undefined;
  if (dataDir) {
    // Every node's spool under the data dir (lib/journal/node-spools.ts); the access log beside them.
    if (spools.length === 0 && existsSync(journalRoot(dataDir))) {
      spools.push(...journalSpoolDirs(dataDir));
      accessLogDir = journalRoot(dataDir);
    }
    const local = join(dataDir, LOCAL_S3_ENDPOINT_FILE);
    if (!target && existsSync(local)) target = { bucket: LOCAL_AUDIT_BUCKET, endpoint: readFileSync(local, 'utf8').trim(), credentials: LOCAL_S3_CREDENTIALS };
  }
  if (target?.endpoint && !target.credentials && !process.env.AWS_ACCESS_KEY_ID) target = { ...target, credentials: LOCAL_S3_CREDENTIALS };
  return new Archive({ ...(target ? { target } : {}), spoolDirs: spools, ...(accessLogDir ? { accessLogDir } : {}) });
}

function withOptions(c: Command): Command {
  return c
    .option('--from <address>', 'envelope sender (MAIL FROM): an address or @domain')
    .option('--to <address>', 'any envelope recipient, Bcc included: an address or @domain')
    .option('--since <date>', 'accepted at or after (ISO 8601)')
    .option('--until <date>', 'accepted at or before (ISO 8601)')
    .option('--message-id <id>', 'the Message-ID header, with or without <>')
    .option('--bucket <name>', 'archive bucket (default: MAILFLEET_AUDIT_BUCKET, else the local platform)')
    .option('--endpoint <url>', 'S3-compatible endpoint (default: AWS; MAILFLEET_AUDIT_S3_ENDPOINT)')
    .option('--prefix <prefix>', 'key prefix of the journal in the bucket')
    .option('--spool <dir...>', 'local journal spools to include (default: <data dir>/journal)')
    .option('-c, --config <file>', 'spec file (finds the local data dir)', 'examples/local.yaml')
    .option('--data-dir <dir>', 'local data dir (default: MAILFLEET_DATA_DIR, else the spec local.dataDir)');
}

export const registerArchive: RegisterCommand = (program) => {
  const archive = program.command('archive').description('the audit journal: search and export accepted messages (each access is logged)');
  withOptions(archive.command('search').description('list journaled messages matching the filters'))
    .option('--json', 'JSON lines, one envelope each')
    .action((o: ArchiveOptions) =>
      runAction(async () => {
        const a = archiveOf(o);
        try {
          const hits = await a.search(query(o));
          if (o.json) {
            for (const h of hits) process.stdout.write(`${JSON.stringify({ ...h.entry, location: h.location.kind })}\n`);
            return;
          }
          const rows = hits.map((h) => [h.entry.time, h.entry.sender || '<>', h.entry.recipients.join(', '), h.entry.messageId ?? '', h.entry.user ?? '', h.entry.clientIp, h.entry.acknowledged ? '' : 'not acknowledged', h.location.kind]);
          process.stdout.write(`${table(['time', 'from', 'to (envelope)', 'message-id', 'user', 'client', 'note', 'where'], rows)}\n${hits.length} message(s)\n`);
        } finally {
          await a.close();
        }
      }),
    );
  withOptions(archive.command('export').description('write the matching messages to stdout as an mbox (mboxrd; envelope in X-Envelope-* headers)')).action((o: ArchiveOptions) =>
    runAction(async () => {
      const a = archiveOf(o);
      try {
        const n = await a.export(query(o), process.stdout);
        process.stderr.write(`${n} message(s) exported\n`);
      } finally {
        await a.close();
      }
    }),
  );
};
