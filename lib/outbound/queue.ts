/**
 * The outbound queue: mail submitted for non-local domains, relayed through the spec's smarthost
 * (`smtp.relay`). mailfleetd does no MX routing of its own; a relay (the ISP's, SES, Postfix) does.
 *
 * - Durable before the 250: the message is written to `<dir>/<id>.eml` and its envelope to
 *   `<id>.json` (each fsynced, then renamed into place, then the directory fsynced). The .json appearing
 *   is what makes an entry real; an .eml without one is a crash leftover and is removed.
 * - A runner (one per daemon) sends due entries through nodemailer's SMTP client, `concurrency` at a
 *   time. Per recipient: accepted → done; 4xx or no answer → retried (retrySeconds, doubling, at most
 *   an hour apart); 5xx → bounced. Entries older than maxAgeHours bounce what is left ("expired").
 * - Bounces are RFC 3464 delivery status notifications to the envelope sender, handed to `onBounce`
 *   (the daemon delivers them to the sender's local mailbox). A null sender (<>) never gets one.
 * - The queue folder is per node (the daemon's data dir): a node lost with its disk loses its queue,
 *   as a Postfix node would. docs/daemon.md says so.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createTransport } from 'nodemailer';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { DirectorySyncer, storeError } from '../store/maildir/deliver.js';
import { bounceMessage, type FailedRecipient } from './bounce.js';

export interface RelaySettings {
  readonly host: string;
  readonly port: number;
  /** required: STARTTLS or fail (temporary); opportunistic: if offered; none: plain. */
  readonly startTls: 'required' | 'opportunistic' | 'none';
  /** Verify the relay's certificate against the system CAs. */
  readonly verifyCertificate: boolean;
  /** AUTH to the relay, from the environment (never in the spec). */
  readonly username?: string;
  readonly password?: string;
  /** First retry after this long; each next one waits twice as long, at most an hour. */
  readonly retrySeconds: number;
  /** An entry still undelivered after this long bounces. */
  readonly maxAgeHours: number;
  /** Entries sent at once. */
  readonly concurrency: number;
}

export interface QueueEntry {
  readonly id: string;
  readonly from: string;
  /** Recipients still to deliver. */
  to: string[];
  readonly createdAt: number;
  attempts: number;
  nextAttemptAt: number;
  lastError?: string;
}

export interface OutboundQueueProps {
  readonly dir: string;
  readonly relay: RelaySettings;
  /** Reporting MTA name in bounces. */
  readonly hostname: string;
  /** Delivers a bounce to `to` (the original sender); may throw (then the bounce is logged and dropped). */
  readonly onBounce: (to: string, message: Buffer) => Promise<void>;
  /** @default - silent */
  readonly logger?: Logger;
  /** Outcomes, for metrics. */
  readonly onOutcome?: (outcome: 'relayed' | 'deferred' | 'bounced', recipients: number) => void;
  /** @default Date.now */
  readonly now?: () => number;
}

const MAX_BACKOFF_MS = 3_600_000;

export class OutboundQueue {
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly inFlight = new Set<string>();
  /**
   * The entries this runner owns, read from disk once (its first pass) and kept up to date by enqueue and
   * by each attempt: a pass does not re-read a large backlog (a relay outage) from disk every few seconds.
   */
  private pending?: Map<string, QueueEntry>;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;
  private stopped = false;
  /** Maildir delivery's coalesced directory fsync: concurrent enqueues share one. */
  private readonly dirSync = new DirectorySyncer();

  constructor(private readonly props: OutboundQueueProps) {
    this.log = props.logger ?? silentLogger;
    this.now = props.now ?? Date.now;
  }

  /** Stores a message for `to` (non-local recipients). Resolves once it is durable. */
  async enqueue(from: string, to: readonly string[], message: Buffer | Readable): Promise<string> {
    await mkdir(this.props.dir, { recursive: true });
    const id = `${Math.floor(this.now() / 1000).toString(36)}.${randomBytes(6).toString('hex')}.${hostname().replace(/[^\w.-]/g, '_')}`;
    const entry: QueueEntry = { id, from, to: [...to], createdAt: this.now(), attempts: 0, nextAttemptAt: this.now() };
    const eml = join(this.props.dir, `${id}.eml`);
    try {
      await writeDurable(eml, message);
      await writeDurable(join(this.props.dir, `${id}.json`), Buffer.from(JSON.stringify(entry)));
      await this.dirSync.sync(this.props.dir);
    } catch (e) {
      await unlink(eml).catch(() => undefined);
      throw storeError(e);
    }
    this.pending?.set(id, entry);
    this.kick();
    return id;
  }

  /** Starts the runner: a pass now, then every few seconds. */
  start(intervalMs = 5000): void {
    this.timer = setInterval(() => this.kick(), intervalMs);
    this.timer.unref();
    this.kick();
  }

  /**
   * Stops the runner. Sends in flight get `graceMs` to finish; one still talking to a slow relay after
   * that stays queued and is sent again by the next start (the relay may then see it twice, never zero).
   */
  async stop(graceMs = 5000): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    let t: NodeJS.Timeout | undefined;
    await Promise.race([this.running, new Promise<void>((r) => (t = setTimeout(r, graceMs)))]);
    clearTimeout(t);
  }

  /** Entries on disk (tests, admin). */
  async entries(): Promise<QueueEntry[]> {
    const names = await readdir(this.props.dir).catch(() => [] as string[]);
    // Leftovers of a crash before the envelope was written: the client never got a 250 for them.
    const ready = new Set(names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)));
    for (const n of names) {
      const id = n.endsWith('.eml') ? n.slice(0, -4) : n.endsWith('.tmp') ? n : undefined;
      if (id === undefined || ready.has(id) || this.inFlight.has(id)) continue;
      const st = await stat(join(this.props.dir, n)).catch(() => undefined);
      if (st && this.now() - st.mtimeMs > 3_600_000) await unlink(join(this.props.dir, n)).catch(() => undefined);
    }
    const out: QueueEntry[] = [];
    for (const n of names.filter((x) => x.endsWith('.json'))) {
      const e = await this.read(n.slice(0, -5));
      if (e) out.push(e);
    }
    return out;
  }

  /** Runs a pass now (after the current one if one is running). */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass()
      .catch((e: unknown) => this.log.error({ err: e }, 'outbound queue pass failed'))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async pass(): Promise<void> {
    if (!this.pending) {
      // Set before reading, so an enqueue during the read lands in the map rather than being missed.
      const pending = (this.pending = new Map<string, QueueEntry>());
      for (const e of await this.entries()) if (!pending.has(e.id)) pending.set(e.id, e);
    }
    const due = [...this.pending.values()].filter((e) => e.nextAttemptAt <= this.now() && !this.inFlight.has(e.id)).sort((a, b) => a.createdAt - b.createdAt);
    const workers = Array.from({ length: Math.min(this.props.relay.concurrency, due.length) }, async () => {
      for (let e = due.shift(); e && !this.stopped; e = due.shift()) await this.attempt(e);
    });
    await Promise.all(workers);
  }

  private async attempt(e: QueueEntry): Promise<void> {
    this.inFlight.add(e.id);
    try {
      const r = this.props.relay;
      const failed: FailedRecipient[] = [];
      const deferred: Array<{ to: string; error: string }> = [];
      try {
        const transport = createTransport({
          host: r.host,
          port: r.port,
          secure: false,
          ignoreTLS: r.startTls === 'none',
          requireTLS: r.startTls === 'required',
          tls: { rejectUnauthorized: r.verifyCertificate },
          ...(r.username ? { auth: { user: r.username, pass: r.password ?? '' } } : {}),
          name: this.props.hostname,
          connectionTimeout: 30_000,
          greetingTimeout: 30_000,
          socketTimeout: 120_000,
        });
        const info = await transport.sendMail({
          envelope: { from: e.from, to: e.to },
          raw: createReadStream(join(this.props.dir, `${e.id}.eml`)),
        });
        for (const x of (info as { rejectedErrors?: Array<Error & { recipient?: string; responseCode?: number; response?: string }> }).rejectedErrors ?? []) {
          const to = x.recipient ?? '';
          if ((x.responseCode ?? 0) >= 500) failed.push({ address: to, status: enhanced(x.response, x.responseCode), diagnostic: x.response ?? x.message });
          else deferred.push({ to, error: x.response ?? x.message });
        }
        transport.close();
      } catch (err) {
        const x = err as Error & { responseCode?: number; response?: string; rejected?: string[] };
        const text = x.response ?? x.message;
        if ((x.responseCode ?? 0) >= 500) for (const to of e.to) failed.push({ address: to, status: enhanced(x.response, x.responseCode), diagnostic: text });
        else for (const to of e.to) deferred.push({ to, error: text });
      }
      const relayed = e.to.length - failed.length - deferred.length;
      if (relayed > 0) this.props.onOutcome?.('relayed', relayed);
      e.attempts++;
      e.to = deferred.map((d) => d.to);
      if (deferred.length > 0) {
        e.lastError = deferred[0]!.error;
        if (this.now() - e.createdAt >= this.props.relay.maxAgeHours * 3_600_000) {
          for (const d of deferred) failed.push({ address: d.to, status: '4.4.7', diagnostic: `expired after ${this.props.relay.maxAgeHours} h: ${d.error}` });
          e.to = [];
        } else {
          e.nextAttemptAt = this.now() + Math.min(MAX_BACKOFF_MS, this.props.relay.retrySeconds * 1000 * 2 ** (e.attempts - 1));
          this.props.onOutcome?.('deferred', deferred.length);
          this.log.info({ id: e.id, to: e.to, attempts: e.attempts, error: e.lastError }, 'relay deferred');
        }
      }
      if (failed.length > 0) {
        this.props.onOutcome?.('bounced', failed.length);
        await this.bounce(e, failed);
      }
      if (e.to.length === 0) {
        this.pending?.delete(e.id);
        await this.remove(e.id);
      }
      else await writeDurable(join(this.props.dir, `${e.id}.json`), Buffer.from(JSON.stringify(e)));
    } finally {
      this.inFlight.delete(e.id);
    }
  }

  private async bounce(e: QueueEntry, failed: readonly FailedRecipient[]): Promise<void> {
    this.log.info({ id: e.id, failed: failed.map((f) => f.address) }, 'relay failed permanently: bouncing');
    if (e.from === '') return; // never bounce a bounce
    const original = await readFile(join(this.props.dir, `${e.id}.eml`)).catch(() => Buffer.alloc(0));
    try {
      await this.props.onBounce(e.from, bounceMessage({ hostname: this.props.hostname, sender: e.from, failed, original, arrivalDate: new Date(e.createdAt) }));
    } catch (err) {
      this.log.warn({ err, id: e.id, to: e.from }, 'bounce not delivered');
    }
  }

  private async read(id: string): Promise<QueueEntry | undefined> {
    try {
      return JSON.parse(await readFile(join(this.props.dir, `${id}.json`), 'utf8')) as QueueEntry;
    } catch {
      return undefined; // being written or removed
    }
  }

  private async remove(id: string): Promise<void> {
    await unlink(join(this.props.dir, `${id}.json`)).catch(() => undefined);
    await unlink(join(this.props.dir, `${id}.eml`)).catch(() => undefined);
  }
}

/** Writes to a temp name, fsyncs, renames into place. */
async function writeDurable(path: string, data: Buffer | Readable): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    if (Buffer.isBuffer(data)) await fh.writeFile(data);
    else await pipeline(data, fh.createWriteStream({ autoClose: false }));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

/** The enhanced status code in a reply ("550 5.1.1 no such user" → 5.1.1), or one from the basic code. */
function enhanced(response: string | undefined, code: number | undefined): string {
  const m = /^\d{3}[ -](\d\.\d{1,3}\.\d{1,3})/.exec(response ?? '');
  if (m) return m[1]!;
  return (code ?? 550) >= 500 ? '5.0.0' : '4.0.0';
}
