/**
 * Documented defaults for every named limit. The README's limits table is generated from these
 * (`mailfleet plan --limits`), so the numbers live here only.
 */
import type { RatesSpec, Service, ServiceLimits, Spec } from './schema.js';

export type EffectiveServiceLimits = Required<ServiceLimits>;
export type EffectiveRates = Required<RatesSpec>;

/**
 * Defaults follow the peers operators know: Dovecot allows 10 IMAP sessions per user+IP
 * (mail_max_userip_connections=10); Postfix 50 concurrent connections per client by default, which we
 * keep lower for MX because legitimate MTAs rarely need more than a handful.
 */
export const DEFAULT_LIMITS: Readonly<Record<Service, EffectiveServiceLimits>> = Object.freeze({
  smtp: {
    listenerConnections: 1000,
    sourceConnections: 20,
    portConnections: 2000,
    perIp: 20,
    perUser: 1000, // MX sessions are not authenticated; applies only if a session ever binds a user
    perUserIp: 1000,
    perDomain: 2000,
    perListener: 2000,
  },
  submission: {
    listenerConnections: 500,
    sourceConnections: 20,
    portConnections: 1000,
    perIp: 20,
    perUser: 10,
    perUserIp: 10,
    perDomain: 500,
    perListener: 1000,
  },
  imap: {
    listenerConnections: 5000,
    sourceConnections: 50,
    portConnections: 10000,
    perIp: 100,
    perUser: 20,
    perUserIp: 10,
    perDomain: 5000,
    perListener: 10000,
  },
  pop3: {
    listenerConnections: 1000,
    sourceConnections: 10,
    portConnections: 2000,
    perIp: 20,
    perUser: 3,
    perUserIp: 3,
    perDomain: 500,
    perListener: 2000,
  },
});

export const DEFAULT_RATES: Readonly<EffectiveRates> = Object.freeze({
  messagesPerMinutePerIp: 120,
  messagesPerMinutePerSender: 60,
  messagesPerMinutePerDomain: 6000,
  recipientsPerMessage: 100,
  recipientsPerHourPerSender: 1000,
  /** 0: no limit (Postfix's smtpd_client_auth_rate_limit and Dovecot have none by default either). */
  loginsPerMinutePerUser: 0,
});

/** Platform limits with domain overrides on top, for one service. */
export function effectiveLimits(spec: Spec, service: Service, domain?: string): EffectiveServiceLimits {
  const d = domain === undefined ? undefined : spec.domains.find((x) => x.name === domain);
  const l = {
    ...DEFAULT_LIMITS[service],
    ...stripUndefined(spec.limits[service] ?? {}),
    ...stripUndefined(d?.limits?.[service] ?? {}),
  };
  // Both are HAProxy caps on the same listener: an inherited per-source cap above a lowered listener cap
  // means "no per-source cap", which the proxy expresses as the listener cap.
  l.sourceConnections = Math.min(l.sourceConnections, l.listenerConnections);
  return l;
}

export function effectiveRates(spec: Spec, domain?: string): EffectiveRates {
  const d = domain === undefined ? undefined : spec.domains.find((x) => x.name === domain);
  return { ...DEFAULT_RATES, ...stripUndefined(spec.rates), ...stripUndefined(d?.rates ?? {}) };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** VPC CIDRs when the spec gives none (as documented on regions.*.cidr). */
export const DEFAULT_VPC_CIDR = Object.freeze({ primary: '10.40.0.0/16', dr: '10.41.0.0/16' } as const);

/**
 * IMAP work limits: what one command may cost the event loop and memory every session shares
 * (docs/faults.md "IMAP work limits" lists each with its reply). Schema defaults (imap.*) come from here.
 */
export const DEFAULT_IMAP_WORK_LIMITS = Object.freeze({
  /** Largest literal before login; bigger ones are refused unread (Dovecot's login process takes a few KB). */
  maxPreAuthLiteralBytes: 8 * 1024,
  /** Literal bytes all IMAP sessions of one process may hold at once (APPEND bodies being received). */
  maxLiteralBytesInFlight: 256 * 1024 * 1024,
  /** Search keys in one SEARCH. */
  maxSearchKeys: 1000,
  /** Nesting of NOT / OR / parentheses in one SEARCH. */
  maxSearchDepth: 32,
  /** Comma-separated ranges in one sequence or UID set. */
  maxSequenceSetRanges: 10_000,
  /** MIME parts of one message the BODYSTRUCTURE shows; beyond it the message is shown as one part. */
  maxMimeParts: 1000,
  /** MIME nesting (multiparts and embedded messages); beyond it the message is shown as one part. */
  maxMimeDepth: 32,
  /** Largest header block of one MIME part; beyond it the message is shown as one part. */
  maxHeaderBytes: 1024 * 1024,
  /** `* OK Still here` while a client IDLEs, so NLB (350 s) and NAT idle timeouts never drop it. */
  keepaliveSeconds: 120,
  // --- CONDSTORE/QRESYNC
  /** Expunged UIDs per folder whose expunge modseq the UID list keeps for QRESYNC VANISHED (older: floor). */
  expungeHistoryUids: 10_000,
  // --- end CONDSTORE/QRESYNC
  // --- change log beside the UID list (issue 20)
  /**
   * Bytes the append-only change log beside a folder's UID list may reach before the next change rewrites
   * the list with the logged changes folded in (lib/store/mailbox/change-log.ts); 0 = no log. Off by
   * default: daemons before the log read the list only, so on a mail root shared with them (every rolling
   * upgrade from such a version) a logged change would be unseen there, and their whole-list rewrite would
   * drop it. Turn it on (65536 is the measured value) once every node runs a version with the log.
   */
  changeLogBytes: 0,
  // --- end change log
  // --- folder lock kept between passes (issue 20)
  /**
   * Milliseconds a folder's lock file is kept after a locked pass (flag change, APPEND, EXPUNGE, new-mail
   * scan) so the next pass of the same daemon reuses it instead of creating and unlinking it again
   * (lib/store/mailbox/lock.ts HeldLock); held at most 100 ms in a row. 0 releases it after every pass.
   */
  folderLockHoldMs: 20,
  // --- end folder lock
  // --- LIST-EXTENDED, COMPRESS (issue 21) ---
  /** Patterns in one LIST-EXTENDED `LIST "" (p1 p2 …)`: each is matched against every folder of the user. */
  maxListPatterns: 64,
  /**
   * zlib memory all COMPRESS=DEFLATE sessions of one process may hold (each costs its deflate and inflate
   * state, about 100 KiB: lib/daemon/imap/compress.ts); beyond it COMPRESS answers NO [LIMIT].
   */
  maxCompressMemoryBytes: 256 * 1024 * 1024,
  // --- end issue 21 ---
});

/** Audit journal defaults (spec audit.*, docs/audit.md). */
export const DEFAULT_AUDIT = Object.freeze({
  /** Object Lock retention: seven years, a common statutory period for business records. */
  retentionDays: 2555,
  /** Governance: an operator with s3:BypassGovernanceRetention can still fix a mistake; compliance cannot. */
  mode: 'governance' as const,
  /** Journal objects are rarely read after the first weeks. */
  archiveAfterDays: 90,
  /** Glacier Instant Retrieval: archive price, still readable by `mailfleet archive export` without a restore. */
  archiveStorageClass: 'GLACIER_IR' as const,
  batchMaxEntries: 1000,
  batchMaxBytes: 64 * 1024 * 1024,
  flushIntervalSeconds: 10,
});
/**
 * Spam actions of filtering.policy (docs/filtering.md). Scores are rspamd's: its own add_header is 6 and
 * reject 15; Junk at 6 follows what mailcow and docker-mailserver do with rspamd's add_header action.
 */
export interface EffectiveFilterPolicy {
  rejectScore: number;
  junkScore: number;
  addHeaderScore: number;
  rewriteSubjectScore: number;
  subjectPrefix: string;
  spam: 'reject' | 'junk';
  spfFail: 'score' | 'junk' | 'reject';
}
export const DEFAULT_FILTER_POLICY: Readonly<EffectiveFilterPolicy> = Object.freeze({
  rejectScore: 15,
  junkScore: 6,
  addHeaderScore: 5,
  rewriteSubjectScore: Number.POSITIVE_INFINITY,
  subjectPrefix: '***SPAM***',
  spam: 'reject',
  spfFail: 'score',
});

/** filtering.policy with the domain's entry of filtering.domains on top. */
export function effectiveFilterPolicy(filtering: Pick<NonNullable<Spec['filtering']>, 'policy' | 'domains'>, domain?: string): EffectiveFilterPolicy {
  const d = domain === undefined ? undefined : filtering.domains[domain.toLowerCase()];
  return { ...DEFAULT_FILTER_POLICY, ...stripUndefined(filtering.policy), ...stripUndefined(d ?? {}) };
}
/**
 * Mailbox quotas (docs/quota.md). 1 GiB per user as Gmail-era hosting plans start; no message-count cap
 * (Dovecot's default); warnings at 80 % and 95 % (as Dovecot's quota_warning examples).
 */
export const DEFAULT_QUOTAS = Object.freeze({
  /** Per-user storage, bytes; 0 = unlimited. */
  storageBytes: 1024 * 1024 * 1024,
  /** Per-user messages; 0 = unlimited. */
  messages: 0,
  /** Usage percentages that put a warning into the mailbox, once per crossing. */
  warnPercents: Object.freeze([80, 95]),
  /** How long one node trusts a domain's summed usage. */
  domainUsageCacheSeconds: 10,
});
/**
 * maildir.durableWrites: the fair, adaptive gate in front of durable delivery writes (lib/store/fair-gate.ts).
 * Off by default (maxInFlight 0): on this machine's ext4 its latency-driven limit mistook fsync batching for
 * queueing and cost up to half the delivery throughput at 64 concurrent deliveries (bench/durable-gate);
 * turn it on (e.g. 64) where one sender can fill a volume that serves one write at a time (an IOPS cap).
 */
export const DEFAULT_DURABLE_WRITES = { maxInFlight: 0, latencyTolerance: 1.5, latencySlackMs: 2, windowMs: 10_000 } as const;

/**
 * The adaptive flow governor (spec governor.*, docs/governor.md). It starts in observe mode: it logs what
 * it would do and changes nothing until an operator switches it to advise or enforce.
 */
export const DEFAULT_GOVERNOR = Object.freeze({
  /** observe: log only; advise: log the `mailfleet limit set` command for a person; enforce: apply it. */
  mode: 'observe' as const,
  /** How often the governor reads every daemon's signals and limits. */
  intervalSeconds: 5,
  /** Between two lowering steps: long enough for the last one to show in the signals. */
  settleSeconds: 15,
  /** Load must stay under the release threshold this long before a lowered limit is raised one step. */
  cooldownSeconds: 60,
  /** A lowering step cuts a scope to this percentage below its sessions (or its limit, if lower). */
  stepPercent: 25,
  /** A raising step adds this percentage of the value the scope had before the governor lowered it. */
  raiseStepPercent: 25,
  /** No governed limit goes below this many sessions. */
  floor: 2,
  /** Calm (may raise) only when every targeted signal is under this fraction of its target. */
  releaseRatio: 0.7,
  /**
   * A lowered scope is raised only once its own refusals have stayed at or under this rate (per second,
   * all daemons) for the cooldown: a capped client still knocking is not let back in to flood again.
   */
  releaseRefusalsPerSecond: 0,
  /** Event-loop lag p99 (ms) over the interval, highest node. */
  eventLoopLagMs: 50,
  /** End of DATA to durable in every Maildir, p99 (ms) over the interval, highest node. */
  storageLatencyMs: 500,
});
