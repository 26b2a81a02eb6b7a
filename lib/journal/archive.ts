/**
 * Reading the journal back, for auditors (`mailfleet archive search|export`): the archive bucket's batch
 * indexes, plus entries still in a local spool (not yet shipped). Every access is logged before any result
 * leaves: an object under <prefix>access-log/ in the bucket (or a line in <spool>/access.log without one),
 * naming who asked what and which entries were returned; when the log cannot be written, nothing is returned.
 */
import { randomBytes } from 'node:crypto';
import { appendFile, open } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { MailfleetError } from '../errors.js';
import { dayPath, s3Client, type S3Target } from './s3.js';
import { JournalSpool } from './spool.js';
import type { ArchivedEntry } from './types.js';
import type { BatchIndex } from './uploader.js';

export interface ArchiveQuery {
  /** MAIL FROM: an address (exact, any case) or `@domain`. */
  readonly from?: string;
  /** Any envelope recipient (Bcc included): an address or `@domain`. */
  readonly to?: string;
  readonly since?: Date;
  readonly until?: Date;
  /** The Message-ID, with or without angle brackets. */
  readonly messageId?: string;
}

/** A found entry and where its bytes are. */
export interface ArchiveHit {
  readonly entry: ArchivedEntry;
  readonly location: { readonly kind: 's3'; readonly key: string; readonly offset: number; readonly length: number } | { readonly kind: 'spool'; readonly dir: string; readonly name: string; readonly index: number };
}

export interface ArchiveProps {
  /** The archive bucket. @default - spool only */
  readonly target?: S3Target;
  /** Local spools to include (entries not yet shipped). @default [] */
  readonly spoolDirs?: readonly string[];
  /** Where the access log goes without a bucket. @default - the first of spoolDirs */
  readonly accessLogDir?: string;
  /** Who is asking, for the access log. @default - <OS user>@<host> */
  readonly actor?: string;
}

export class Archive {
  private client?: S3Client;
  private readonly actor: string;

  constructor(private readonly props: ArchiveProps) {
    if (!props.target && (props.spoolDirs ?? []).length === 0) throw new MailfleetError('BAD_REQUEST', 'archive: no bucket and no spool to read', { status: 400 });
    this.actor = props.actor ?? `${userInfo().username}@${hostname()}`;
  }

  /** Entries matching `q`, oldest first; the access is logged first. */
  async search(q: ArchiveQuery): Promise<ArchiveHit[]> {
    const hits = await this.find(q);
    await this.logAccess('search', q, hits);
    return hits;
  }

  /** Writes the matching messages to `out` as an mboxrd file (envelope in X- headers); returns how many. */
  async export(q: ArchiveQuery, out: Writable): Promise<number> {
    const hits = await this.find(q);
    await this.logAccess('export', q, hits);
    for (const h of hits) {
      const bytes = await this.bytes(h);
      if (!out.write(mboxMessage(h.entry, bytes))) await new Promise<void>((r) => out.once('drain', () => r()));
    }
    return hits.length;
  }

  async close(): Promise<void> {
    this.client?.destroy();
  }

  private async find(q: ArchiveQuery): Promise<ArchiveHit[]> {
    const byId = new Map<string, ArchiveHit>();
    for (const dir of this.props.spoolDirs ?? []) {
      const spool = JournalSpool.reader(dir);
      for (const name of await spool.pending().catch(() => [])) {
        let read;
        try {
          read = await spool.read(name);
        } catch (e) {
          // Shipped and removed meanwhile: the bucket (read next) has it.
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw e;
        }
        read.forEach(({ entry }, index) => {
          if (matches(entry, q)) byId.set(entry.id, { entry, location: { kind: 'spool', dir, name, index } });
        });
      }
    }
    if (this.props.target) {
      // An entry both shipped and still spooled (a crash before its removal): the bucket's copy wins.
      for (const key of await this.indexKeys(q)) {
        const index = JSON.parse((await this.get(key)).toString('utf8')) as BatchIndex;
        for (const e of index.entries) {
          const { offset, length, ...entry } = e;
          if (matches(entry, q)) byId.set(entry.id, { entry, location: { kind: 's3', key: index.dataKey, offset, length } });
        }
      }
    }
    return [...byId.values()].sort((a, b) => (a.entry.time < b.entry.time ? -1 : a.entry.time > b.entry.time ? 1 : a.entry.id < b.entry.id ? -1 : 1));
  }

  /** Index objects of the days the query covers (a batch is filed under its first entry's day: one day earlier too). */
  private async indexKeys(q: ArchiveQuery): Promise<string[]> {
    const base = `${this.props.target!.prefix ?? ''}journal/`;
    const prefixes: string[] = [];
    if (q.since) {
      const end = (q.until ?? new Date()).getTime() + 86_400_000;
      for (let t = q.since.getTime() - 86_400_000; t <= end && prefixes.length <= 400; t += 86_400_000) prefixes.push(`${base}${dayPath(new Date(t))}/`);
      if (prefixes.length > 400) prefixes.splice(0, prefixes.length, base);
    } else prefixes.push(base);
    const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
    const client = await this.s3();
    const keys: string[] = [];
    for (const Prefix of prefixes) {
      let ContinuationToken: string | undefined;
      do {
        const r = await client.send(new ListObjectsV2Command({ Bucket: this.props.target!.bucket, Prefix, ContinuationToken }));
        for (const o of r.Contents ?? []) if (o.Key?.endsWith('.index.json')) keys.push(o.Key);
        ContinuationToken = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (ContinuationToken);
    }
    return keys.sort();
  }

  private async bytes(h: ArchiveHit): Promise<Buffer> {
    const l = h.location;
    if (l.kind === 's3') return l.length === 0 ? Buffer.alloc(0) : this.get(l.key, `bytes=${l.offset}-${l.offset + l.length - 1}`);
    const read = await JournalSpool.reader(l.dir).read(l.name);
    return read[l.index]!.message;
  }

  private async get(Key: string, Range?: string): Promise<Buffer> {
    const { GetObjectCommand } = await import('@aws-sdk/client-s3');
    const r = await (await this.s3()).send(new GetObjectCommand({ Bucket: this.props.target!.bucket, Key, ...(Range ? { Range } : {}) }));
    return Buffer.from(await r.Body!.transformToByteArray());
  }

  private async s3(): Promise<S3Client> {
    this.client ??= await s3Client(this.props.target!);
    return this.client;
  }

  private async logAccess(command: 'search' | 'export', q: ArchiveQuery, hits: readonly ArchiveHit[]): Promise<void> {
    const time = new Date();
    const record = {
      time: time.toISOString(),
      actor: this.actor,
      command,
      query: { ...q, since: q.since?.toISOString(), until: q.until?.toISOString() },
      results: hits.length,
      entries: hits.map((h) => h.entry.id),
    };
    const body = `${JSON.stringify(record)}\n`;
    if (this.props.target) {
      const { PutObjectCommand } = await import('@aws-sdk/client-s3');
      const key = `${this.props.target.prefix ?? ''}access-log/${dayPath(time)}/${time.toISOString().replace(/[:.]/g, '')}-${randomBytes(4).toString('hex')}.json`;
      await (await this.s3()).send(new PutObjectCommand({ Bucket: this.props.target.bucket, Key: key, Body: body, ContentType: 'application/json' }));
      return;
    }
    const file = join(this.props.accessLogDir ?? this.props.spoolDirs![0]!, 'access.log');
    await appendFile(file, body, { mode: 0o600 });
    const fh = await open(file, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
}

/** Access-log records of the bucket (or spool), oldest first: for tests and `archive access-log`. */
export async function readAccessLog(props: ArchiveProps): Promise<Array<Record<string, unknown>>> {
  if (!props.target) {
    const { readFile } = await import('node:fs/promises');
    const text = await readFile(join(props.accessLogDir ?? props.spoolDirs![0]!, 'access.log'), 'utf8').catch(() => '');
    return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  }
  const { GetObjectCommand, ListObjectsV2Command } = await import('@aws-sdk/client-s3');
  const client = await s3Client(props.target);
  try {
    const out: Array<Record<string, unknown>> = [];
    const r = await client.send(new ListObjectsV2Command({ Bucket: props.target.bucket, Prefix: `${props.target.prefix ?? ''}access-log/` }));
    for (const o of (r.Contents ?? []).sort((a, b) => (a.Key! < b.Key! ? -1 : 1))) {
      const g = await client.send(new GetObjectCommand({ Bucket: props.target.bucket, Key: o.Key! }));
      out.push(JSON.parse(await g.Body!.transformToString()) as Record<string, unknown>);
    }
    return out;
  } finally {
    client.destroy();
  }
}

function addressMatches(address: string, want: string): boolean {
  const a = address.toLowerCase();
  const w = want.toLowerCase();
  return w.startsWith('@') ? a.endsWith(w) : a === w;
}

export function matches(e: ArchivedEntry, q: ArchiveQuery): boolean {
  if (q.from !== undefined && !addressMatches(e.sender, q.from)) return false;
  if (q.to !== undefined && !e.recipients.some((r) => addressMatches(r, q.to!))) return false;
  const t = Date.parse(e.time);
  if (q.since && t < q.since.getTime()) return false;
  if (q.until && t > q.until.getTime()) return false;
  if (q.messageId !== undefined) {
    const want = q.messageId.startsWith('<') && q.messageId.endsWith('>') ? q.messageId.slice(1, -1) : q.messageId;
    if (e.messageId !== want) return false;
  }
  return true;
}

/**
 * One mboxrd message: the From_ line, the envelope as X- headers (Bcc recipients are only in the envelope),
 * the message with CRLF as LF and every `>*From ` line quoted with one more '>'.
 */
export function mboxMessage(e: ArchivedEntry, message: Buffer): Buffer {
  const date = new Date(e.time).toUTCString().replace(',', '').replace(' GMT', '');
  const [wd, d, mon, y, time] = date.split(' ');
  const fromLine = `From ${e.sender === '' ? 'MAILER-DAEMON' : e.sender} ${wd} ${mon} ${d!.padStart(2, ' ')} ${time} ${y}\n`;
  const headers = [
    `X-Mailfleet-Journal-Id: ${e.id}`,
    `X-Mailfleet-Accepted: ${e.time} by ${e.node} (${e.protocol}) from ${e.clientIp}${e.user ? ` user ${e.user}` : ''}`,
    `X-Mailfleet-Acknowledged: ${e.acknowledged ? 'yes' : 'no'}`,
    `X-Envelope-From: <${e.sender}>`,
    ...e.recipients.map((r) => `X-Envelope-To: <${r}>`),
  ];
  const text = message.toString('latin1').split('\r\n').join('\n');
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    let j = 0;
    while (l[j] === '>') j++;
    if (l.startsWith('From ', j)) lines[i] = `>${l}`;
  }
  let body = lines.join('\n');
  if (!body.endsWith('\n')) body += '\n';
  return Buffer.from(`${fromLine}${headers.join('\n')}\n${body}\n`, 'latin1');
}
