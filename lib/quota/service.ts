/**
 * The daemon's quota service, one per DaemonContext (quotaOf): effective limits (spec, directory
 * attribute, live overrides), usage from the store's usage files (lib/store/usage.ts), the verdicts SMTP
 * and IMAP enforce, warnings at quotas.warnPercents, recalc, the largest-mailboxes listing and the
 * per-domain metrics. Protocol front-ends ask it; they never read usage files themselves.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Counter, Gauge, type Registry } from 'prom-client';
import { MailfleetError } from '../errors.js';
import type { DaemonContext } from '../daemon/context.js';
import { registryCounter } from '../daemon/metrics.js';
import { traceHeaders } from '../daemon/smtp/received.js';
import type { DirectoryUser } from '../directory/types.js';
import { quotasSchema, type QuotasSpec } from '../spec/schema.js';
import { addressParts, maildirPath } from '../store/maildir/paths.js';
import { measureMaildir, readUsage, updateUsage, type Usage, type UsageRecord } from '../store/usage.js';
import { domainQuota, fits, userQuota, type DirectoryQuota } from './resolve.js';
import { quotasStatePath, readQuotasState, writeQuotasState, type QuotasState } from './state-file.js';
import type { DomainQuotaStatus, QuotaOverride, QuotaVerdict, UserQuotaStatus } from './types.js';
import { warningMessage } from './warning.js';

/** A user for a verdict: the address, and the directory's quota attributes when the caller has the entry. */
export type QuotaSubject = string | Pick<DirectoryUser, 'address' | 'quotaBytes' | 'quotaMessages'>;

export interface RecalcResult {
  readonly address: string;
  readonly before: Usage;
  readonly after: Usage;
}

export class QuotaService {
  readonly spec: QuotasSpec;
  private state: QuotasState;
  private readonly stateFile: string;
  private readonly domainCache = new Map<string, { at: number; usage: { bytes: number; messages: number } }>();
  private readonly refusals: Counter<'domain' | 'protocol' | 'resource'>;
  private readonly warnings: Counter<'domain' | 'percent'>;

  constructor(private readonly ctx: DaemonContext) {
    this.spec = ctx.config.quotas ?? quotasSchema.parse({});
    this.stateFile = quotasStatePath(ctx.dataDir);
    this.state = readQuotasState(this.stateFile);
    const reg = ctx.metrics.registry;
    this.refusals = registryCounter(reg, 'mailfleetd_quota_refusals_total', 'Messages refused for quota, by recipient domain, protocol (smtp-rcpt, smtp-data, imap) and resource', ['domain', 'protocol', 'resource']);
    this.warnings = registryCounter(reg, 'mailfleetd_quota_warnings_total', 'Quota warning messages put into mailboxes, by domain and threshold', ['domain', 'percent']);
    this.domainGauges(reg);
  }

  private maildir(address: string): string {
    return maildirPath(this.ctx.mailRoot, address);
  }

  /** The directory's quota attributes for a user (undefined when it has none or cannot answer now). */
  private async directoryQuota(s: QuotaSubject): Promise<{ address: string; directory: DirectoryQuota | undefined }> {
    if (typeof s !== 'string') return { address: s.address.toLowerCase(), directory: { bytes: s.quotaBytes, messages: s.quotaMessages } };
    const address = addressParts(s).address;
    try {
      const u = (await this.ctx.directory.resolveRecipient(address)).find((x) => x.address.toLowerCase() === address);
      return { address, directory: u && { bytes: u.quotaBytes, messages: u.quotaMessages } };
    } catch {
      return { address, directory: undefined }; // a directory outage must not block mail: spec limits apply
    }
  }

  async status(subject: QuotaSubject): Promise<UserQuotaStatus> {
    const { address, directory } = await this.directoryQuota(subject);
    const r = userQuota(this.spec, address, this.state.users[address], directory);
    const rec = await readUsage(this.maildir(address));
    return { address, usage: { bytes: rec.bytes, messages: rec.messages }, limit: r.limit, source: r.source, domain: await this.domainStatus(addressParts(address).domain) };
  }

  async domainStatus(domain: string, fresh = false): Promise<DomainQuotaStatus> {
    const d = domain.toLowerCase();
    return { domain: d, usage: await this.domainUsage(d, fresh), limit: domainQuota(this.spec, d, this.state.domains[d]).limit };
  }

  /** The sum of a domain's usage files; one read of the domain folder per domainUsageCacheSeconds. */
  private async domainUsage(domain: string, fresh: boolean): Promise<{ bytes: number; messages: number }> {
    const c = this.domainCache.get(domain);
    if (!fresh && c && Date.now() - c.at < this.spec.domainUsageCacheSeconds * 1000) return { ...c.usage };
    const usage = { bytes: 0, messages: 0 };
    for (const local of await readdir(join(this.ctx.mailRoot, domain)).catch(() => [] as string[])) {
      const u = await readUsage(join(this.ctx.mailRoot, domain, local, 'Maildir'));
      usage.bytes += u.bytes;
      usage.messages += u.messages;
    }
    this.domainCache.set(domain, { at: Date.now(), usage });
    return { ...usage };
  }

  /** What this node added since it last summed a domain, so its own burst is not invisible until the next read. */
  private bumpDomain(domain: string, bytes: number, messages: number): void {
    const c = this.domainCache.get(domain);
    if (!c) return;
    c.usage.bytes += bytes;
    c.usage.messages += messages;
  }

  /**
   * May `subject` take `addBytes` more in `addMessages` more messages? With addBytes = 0 and addMessages = 0
   * this is "is it already at or over" (SMTP RCPT without SIZE): a mailbox exactly full takes nothing more.
   */
  async verdict(subject: QuotaSubject, addBytes: number, addMessages: number): Promise<QuotaVerdict> {
    const st = await this.statusForVerdict(subject);
    const atLeastOne = addBytes === 0 && addMessages === 0;
    const u = fits(st.limit, st.usage, atLeastOne ? 1 : addBytes, atLeastOne ? 1 : addMessages);
    if (u !== 'ok') return u === 'storage' ? 'user-storage' : 'user-messages';
    if (st.domainLimit.storageBytes === 0 && st.domainLimit.messages === 0) return 'ok';
    const du = await this.domainUsage(st.domain, false);
    const d = fits(st.domainLimit, du, atLeastOne ? 1 : addBytes, atLeastOne ? 1 : addMessages);
    return d === 'ok' ? 'ok' : d === 'storage' ? 'domain-storage' : 'domain-messages';
  }

  private async statusForVerdict(subject: QuotaSubject) {
    const { address, directory } = await this.directoryQuota(subject);
    const domain = addressParts(address).domain;
    return {
      domain,
      limit: userQuota(this.spec, address, this.state.users[address], directory).limit,
      usage: await readUsage(this.maildir(address)),
      domainLimit: domainQuota(this.spec, domain, this.state.domains[domain]).limit,
    };
  }

  /** Counts a refusal (metrics) and returns the verdict's text. */
  refused(address: string, protocol: 'smtp-rcpt' | 'smtp-data' | 'imap', v: QuotaVerdict): string {
    const domain = address.slice(address.lastIndexOf('@') + 1).toLowerCase();
    this.refusals.inc({ domain, protocol, resource: v });
    return v.startsWith('domain') ? `quota of domain ${domain} exceeded` : `mailbox of ${address} is over quota`;
  }

  /** Called after mail went in: a node's own domain sums follow, and crossed thresholds warn once. */
  async added(address: string, bytes: number, messages: number): Promise<void> {
    this.bumpDomain(addressParts(address).domain, bytes, messages);
    await this.warnIfCrossed(address).catch((e: unknown) => this.ctx.logger.warn({ err: e, address }, 'quota warning failed'));
  }

  /**
   * The highest of quotas.warnPercents usage has reached, against the `warned` mark in the usage file
   * (changed under its lock, so of two daemons only one sends). Usage that fell below a threshold lowers
   * the mark, so the next climb past it warns again.
   */
  private async warnIfCrossed(address: string): Promise<void> {
    // No thresholds: no mark to keep and nothing to send (a delivery then reads no usage file here).
    if (this.spec.warnPercents.length === 0) return;
    // One read of the usage file per delivery: the limit and the mark come from the same record (the
    // full status, with the domain's sum, only when a warning is actually sent).
    const { address: a, directory } = await this.directoryQuota(address);
    const limit = userQuota(this.spec, a, this.state.users[a], directory).limit;
    const rec = await readUsage(this.maildir(a));
    const pct = Math.max(limit.storageBytes > 0 ? (rec.bytes / limit.storageBytes) * 100 : 0, limit.messages > 0 ? (rec.messages / limit.messages) * 100 : 0);
    const reached = Math.max(0, ...this.spec.warnPercents.filter((p) => pct >= p));
    // Most deliveries change no mark: no lock for them.
    if (rec.warned === reached) return;
    let send = false;
    await updateUsage(this.maildir(address), (r: UsageRecord) => {
      if (r.warned === reached) return r;
      send = reached > r.warned;
      return { ...r, warned: reached };
    });
    if (!send) return;
    const st = await this.status(address);
    this.warnings.inc({ domain: addressParts(address).domain, percent: String(reached) });
    // Straight into the mailbox, without a quota check: the warning must arrive at 95 % too.
    await this.ctx.delivery.deliver([{ address, headers: traceHeaders('', address) }], warningMessage({ hostname: this.ctx.config.hostname, address, percent: reached, status: st }));
    this.bumpDomain(addressParts(address).domain, 0, 1);
  }

  /** Recomputes a user's usage from the Maildir (the one full walk), keeping the warning mark. */
  async recalc(address: string): Promise<RecalcResult> {
    const a = addressParts(address).address;
    const dir = this.maildir(a);
    const before = await readUsage(dir);
    const measured = await measureMaildir(dir);
    const after = await updateUsage(dir, (r) => ({ ...r, bytes: measured.bytes, messages: measured.messages }));
    this.domainCache.delete(addressParts(a).domain);
    return { address: a, before: { bytes: before.bytes, messages: before.messages }, after: { bytes: after.bytes, messages: after.messages } };
  }

  /** Every mailbox on the volume with its usage and limits, largest first (`quota list --top N`). */
  async list(top?: number): Promise<UserQuotaStatus[]> {
    const users: Array<{ address: string; bytes: number }> = [];
    for (const domain of await readdir(this.ctx.mailRoot).catch(() => [] as string[])) {
      for (const local of await readdir(join(this.ctx.mailRoot, domain)).catch(() => [] as string[])) {
        const u = await readUsage(join(this.ctx.mailRoot, domain, local, 'Maildir'));
        users.push({ address: `${local}@${domain}`, bytes: u.bytes });
      }
    }
    users.sort((a, b) => b.bytes - a.bytes || (a.address < b.address ? -1 : 1));
    const chosen = top !== undefined ? users.slice(0, top) : users;
    const out: UserQuotaStatus[] = [];
    for (const u of chosen) {
      try {
        out.push(await this.status(u.address));
      } catch {
        /* a folder that is not a valid address (left by another tool) */
      }
    }
    return out;
  }

  /** Live override of a user (`alice@example.com`) or a whole domain (`example.com`); null drops it. Persisted. */
  setOverride(target: string, value: QuotaOverride | null): { target: string; before?: QuotaOverride; after?: QuotaOverride } {
    const t = target.toLowerCase();
    const isUser = t.includes('@');
    if (isUser) addressParts(t);
    else if (!this.ctx.config.domains.some((d) => d.toLowerCase() === t))
      throw new MailfleetError('BAD_REQUEST', `${t} is not a domain of this platform (give user@domain or a served domain)`, { status: 400 });
    const next: QuotasState = { ...this.state, users: { ...this.state.users }, domains: { ...this.state.domains } };
    const table = isUser ? next.users : next.domains;
    const before = table[t];
    if (value === null) delete table[t];
    else table[t] = { ...before, ...stripUndefined(value) };
    writeQuotasState(this.stateFile, next);
    this.state = next;
    return { target: t, ...(before ? { before } : {}), ...(table[t] ? { after: table[t] } : {}) };
  }

  /** Gauges per served domain, summed when Prometheus scrapes. */
  private domainGauges(reg: Registry): void {
    if (reg.getSingleMetric('mailfleetd_quota_domain_used_bytes')) return;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- prom-client calls collect() with the gauge as `this`
    const service = this;
    const collect = async (): Promise<DomainQuotaStatus[]> => Promise.all(service.ctx.config.domains.map((d) => service.domainStatus(d)));
    let pending: Promise<DomainQuotaStatus[]> | undefined;
    // One summing pass per scrape serves all four gauges.
    const shared = (): Promise<DomainQuotaStatus[]> => {
      pending ??= collect().finally(() => setImmediate(() => (pending = undefined)));
      return pending;
    };
    const gauge = (name: string, help: string, value: (s: DomainQuotaStatus) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['domain'],
        registers: [reg],
        async collect() {
          for (const s of await shared()) this.set({ domain: s.domain }, value(s));
        },
      });
    gauge('mailfleetd_quota_domain_used_bytes', 'Mail stored per domain (sum of its users\' usage files), bytes', (s) => s.usage.bytes);
    gauge('mailfleetd_quota_domain_used_messages', 'Messages stored per domain', (s) => s.usage.messages);
    gauge('mailfleetd_quota_domain_limit_bytes', 'Storage quota of the whole domain, bytes (0 = unlimited)', (s) => s.limit.storageBytes);
    gauge('mailfleetd_quota_domain_limit_messages', 'Message quota of the whole domain (0 = unlimited)', (s) => s.limit.messages);
  }
}

function stripUndefined(o: QuotaOverride): QuotaOverride {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as QuotaOverride;
}

const services = new WeakMap<DaemonContext, QuotaService>();

/** The daemon's quota service, built on first use. */
export function quotaOf(ctx: DaemonContext): QuotaService {
  let s = services.get(ctx);
  if (!s) {
    s = new QuotaService(ctx);
    services.set(ctx, s);
  }
  return s;
}
