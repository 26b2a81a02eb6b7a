/**
 * The mailfleet.yaml schema. Everything the platform is comes from this one document;
 * `describe()` texts become the published JSON Schema's descriptions (editor hover help).
 */
import { parseNetwork } from '../limits/networks.js';
import { z } from 'zod';
import { DEFAULT_AUDIT as AUDIT, DEFAULT_DURABLE_WRITES as FAIR_GATE_DEFAULTS, DEFAULT_GOVERNOR as GOVERNOR, DEFAULT_IMAP_WORK_LIMITS as IMAP_WORK, DEFAULT_QUOTAS } from './defaults.js';

/** Mail services. A service may be offered on several listeners (e.g. IMAP on 143 and 993). */
export const SERVICES = ['smtp', 'submission', 'imap', 'pop3'] as const;
export type Service = (typeof SERVICES)[number];

/** Wire protocols a listener speaks; each belongs to one service. */
export const PROTOCOLS = ['smtp', 'submission', 'submissions', 'imap', 'imaps', 'pop3', 'pop3s'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

const posInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();
const port = z.number().int().min(1).max(65535);

const domainName = z
  .string()
  .min(1)
  .max(253)
  .regex(/^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i, 'expected a domain name like example.com');

/** Connection caps for one service, at every layer of the DESIGN's limits table. */
export const serviceLimitsSchema = z
  .object({
    listenerConnections: posInt
      .optional()
      .describe('HAProxy frontend maxconn for each listener of this service (the virtual-server connection limit).'),
    sourceConnections: posInt
      .optional()
      .describe('Concurrent connections one client IP may hold on one listener (HAProxy stick table).'),
    portConnections: posInt
      .optional()
      .describe('Concurrent connections on this service port of one daemon node (the per-server limit).'),
    perIp: posInt.optional().describe('Concurrent connections from one client IP to the daemon fleet.'),
    perUser: posInt.optional().describe('Concurrent authenticated sessions of one user, fleet-wide.'),
    perUserIp: posInt.optional().describe('Concurrent sessions of one user from one client IP.'),
    perDomain: posInt.optional().describe('Concurrent sessions of all users of one domain, fleet-wide.'),
    perListener: posInt
      .optional()
      .describe('Concurrent connections admitted by the daemons for one listener (tenant × protocol).'),
  })
  .strict();
export type ServiceLimits = z.infer<typeof serviceLimitsSchema>;

export const limitsSchema = z
  .object({
    smtp: serviceLimitsSchema.optional(),
    submission: serviceLimitsSchema.optional(),
    imap: serviceLimitsSchema.optional(),
    pop3: serviceLimitsSchema.optional(),
  })
  .strict();
export type LimitsSpec = z.infer<typeof limitsSchema>;

/** SMTP token-bucket rates. Over a rate the sender gets 450/451 4.7.1 and retries later. */
export const ratesSchema = z
  .object({
    messagesPerMinutePerIp: posInt.optional().describe('Messages per minute from one client IP (MX and submission).'),
    messagesPerMinutePerSender: posInt
      .optional()
      .describe('Messages per minute from one sender (authenticated user on submission, envelope sender on MX).'),
    messagesPerMinutePerDomain: posInt.optional().describe('Messages per minute to or from one local domain.'),
    recipientsPerMessage: posInt.optional().describe('Recipients accepted in one transaction.'),
    recipientsPerHourPerSender: posInt.optional().describe('Recipients one authenticated sender may address per hour.'),
    loginsPerMinutePerUser: z
      .number()
      .int()
      .nonnegative()
      .optional()
      .describe(
        'Logins with the right password one user may make per minute, all services together (0: no limit, the default). Over it a login is refused with a temporary error: before its password is hashed when this node verified the same password recently, else after the check; wrong passwords never use it up. The governor lowers it per user (user:<address>:rates.loginsPerMinutePerUser) when CPU is the pressure.',
      ),
  })
  .strict();
export type RatesSpec = z.infer<typeof ratesSchema>;

/** Mailbox quotas (docs/quota.md): storage and message count, per user and per whole domain. 0 = unlimited. */
export const quotaLimitSchema = z
  .object({
    storageBytes: nonNegInt.optional().describe('Bytes of mail (RFC822.SIZE, summed over every folder); 0 = unlimited.'),
    messages: nonNegInt.optional().describe('Messages over every folder; 0 = unlimited.'),
  })
  .strict();
export type QuotaLimitSpec = z.infer<typeof quotaLimitSchema>;

export const domainQuotaSchema = z
  .object({
    user: quotaLimitSchema.optional().describe('Per-user default in this domain (over quotas.defaults).'),
    total: quotaLimitSchema.optional().describe('The whole domain: the sum of its users. Default: unlimited.'),
    users: z
      .record(z.string().regex(/^[^\s@]+$/, 'expected a local part like alice'), quotaLimitSchema)
      .optional()
      .describe('Per-user overrides by local part (over the directory attribute and the domain default).'),
  })
  .strict();
export type DomainQuotaSpec = z.infer<typeof domainQuotaSchema>;

export const quotasSchema = z
  .object({
    defaults: z
      .object({
        storageBytes: nonNegInt.default(DEFAULT_QUOTAS.storageBytes).describe('Per-user storage when nothing more specific says; 0 = unlimited.'),
        messages: nonNegInt.default(DEFAULT_QUOTAS.messages).describe('Per-user message count when nothing more specific says; 0 = unlimited.'),
      })
      .strict()
      .prefault({})
      .describe('Platform defaults per user.'),
    domains: z.record(domainName, domainQuotaSchema).default({}).describe('Per-domain defaults, totals and per-user overrides, by domain name.'),
    warnPercents: z
      .array(z.number().int().min(1).max(100))
      .max(5)
      .default([...DEFAULT_QUOTAS.warnPercents])
      .describe('A warning message goes into the mailbox once each time usage crosses one of these percentages.'),
    domainUsageCacheSeconds: nonNegInt
      .default(DEFAULT_QUOTAS.domainUsageCacheSeconds)
      .describe('A domain total (the sum of its users\' usage files) is re-read at most this often per node, for domain quotas and metrics.'),
  })
  .strict();
export type QuotasSpec = z.infer<typeof quotasSchema>;

export const domainSchema = z
  .object({
    name: domainName.describe('The mail domain, e.g. example.com.'),
    listeners: z
      .enum(['shared', 'dedicated'])
      .default('shared')
      .describe(
        'shared: the domain uses the default listeners. dedicated: the domain gets its own listener per protocol (its own virtual servers, ports and limits).',
      ),
    protocols: z
      .array(z.enum(PROTOCOLS))
      .min(1)
      .optional()
      .describe('Protocols of the dedicated listeners. Default: submission, submissions, imap, imaps, pop3, pop3s.'),
    slot: z
      .number()
      .int()
      .min(0)
      .max(499)
      .optional()
      .describe(
        'listeners: dedicated only. The tenant\'s port block (cloud ports 20000 + 10 × slot, local dedicatedBase + 10 × slot) and its NLB shard, kept whatever other tenants are added, removed or reordered. Default: the lowest free slot in spec order (may move when tenants before it change; the slot of a planned port is (port − 20000) / 10, write it here to pin it).',
      ),
    limits: limitsSchema.optional().describe('Overrides of the platform limits for this domain.'),
    rates: ratesSchema.optional(),
    affinity: z
      .enum(['source', 'user', 'none'])
      .optional()
      .describe('How the proxy tier keeps a client on one daemon node. Default: source for IMAP/POP3, none for SMTP.'),
  })
  .strict();
export type DomainSpec = z.infer<typeof domainSchema>;

const amiId = z.string().regex(/^ami-[0-9a-f]{8,17}$/, 'expected an AMI id like ami-0123456789abcdef0');

const regionSchema = z
  .object({
    name: z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, 'expected an AWS region like eu-west-1'),
    account: z.string().regex(/^\d{12}$/, 'expected a 12-digit AWS account id'),
    availabilityZones: z
      .array(z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$/, 'expected an availability zone like eu-west-1a'))
      .min(2)
      .max(6)
      .describe('Explicit AZs: mailfleet never looks them up.'),
    cidr: z
      .string()
      .regex(/^\d{1,3}(\.\d{1,3}){3}\/(1[6-9]|2[0-4])$/, 'expected an IPv4 CIDR from /16 to /24')
      .optional()
      .describe('VPC CIDR. Default: 10.40.0.0/16 primary, 10.41.0.0/16 DR.'),
    images: z
      .object({
        storage: amiId.optional().describe('Image of the GlusterFS nodes (the storage instance type\'s architecture).'),
        ldap: amiId.optional().describe('Image of the OpenLDAP nodes (the mail instance type\'s architecture).'),
      })
      .strict()
      .optional()
      .describe(
        'Pinned images of the stateful nodes in this region: they change only when this value does (an explicit upgrade). Default: the latest Debian 12 (the Debian project\'s public SSM parameter), resolved at every deploy (a new image then replaces the node; synth warns).',
      ),
    terminationProtection: z
      .boolean()
      .default(true)
      .describe(
        'Stack termination protection of this region and DisableApiTermination on its storage and LDAP instances. false lets `cdk destroy` (or terraform destroy) remove the region, e.g. a test platform. Default: true.',
      ),
  })
  .strict();

const tierSize = z
  .object({
    instanceType: z.string().regex(/^[a-z0-9]+\.[a-z0-9]+$/, 'expected an EC2 instance type like m7g.large'),
    minNodes: nonNegInt,
    maxNodes: posInt,
    desiredNodes: nonNegInt.optional(),
  })
  .strict();

const storageSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('glusterfs'),
      nodes: z.number().int().min(2).max(12).default(3).describe('Storage nodes; one per AZ where possible.'),
      arbiter: z.boolean().default(true).describe('replica 3 arbiter 1 (true) or full replica 3 (false).'),
      volumeSizeGiB: posInt.default(500),
      instanceType: z.string().default('m7g.large'),
      volumeName: z.string().regex(/^[a-z][a-z0-9-]{1,30}$/).default('mail'),
    })
    .strict(),
  z
    .object({
      kind: z.literal('efs'),
      throughputMode: z.enum(['elastic', 'bursting']).default('elastic'),
    })
    .strict(),
]);

const ldapSchema = z
  .object({
    kind: z.literal('ldap'),
    flavor: z.enum(['openldap', 'active-directory']).default('openldap'),
    uris: z.array(z.string().regex(/^ldaps?:\/\/[^\s]+$/, 'expected ldap:// or ldaps:// URI')).min(1),
    baseDn: z.string().min(1),
    bindDn: z.string().optional().describe('Service account DN used to search for users.'),
    bindPasswordFile: z.string().optional().describe('File holding the service bind password.'),
    bindPasswordEnv: z.string().optional().describe('Environment variable holding the service bind password.'),
    userDnTemplate: z
      .string()
      .optional()
      .describe('Direct bind without a search, e.g. uid={local},ou=people,dc={domain}; {address}, {local}, {domain}.'),
    startTls: z.boolean().default(false),
    caFile: z.string().optional(),
    timeoutMs: posInt.default(3000),
    failbackSeconds: posInt
      .default(60)
      .describe('After failing over, try the earlier URIs again after this long; connections then move back (the first URI is the preferred one, e.g. the provider).'),
    cacheTtlSeconds: nonNegInt.default(60).describe('TTL for recipient and user lookups. Never used for passwords.'),
    negativeCacheTtlSeconds: nonNegInt.default(30),
    poolSize: posInt.default(4),
    userFilter: z
      .string()
      .regex(/^\(.*\)$/, 'expected a parenthesised LDAP filter like (memberOf=cn=mail,ou=groups,dc=example,dc=com)')
      .optional()
      .describe('Filter ANDed into every user search. Default: (objectClass=inetOrgPerson) or (objectClass=user) by flavor.'),
    recheckOnLogin: z
      .boolean()
      .default(true)
      .describe(
        'Re-read the user entry after each successful password check, so an account disabled in the directory is refused at its next login. false trusts cached entries for cacheTtlSeconds.',
      ),
    domains: z
      .array(domainName)
      .optional()
      .describe('Local domains of this directory. Default: the domains of the mail addresses found in the directory.'),
    attributes: z
      .object({
        mail: z.string().optional(),
        alias: z.string().optional(),
        login: z.string().optional(),
        quota: z.string().optional(),
        quotaMessages: z
          .string()
          .optional()
          .describe('Attribute holding a message-count quota (an integer). Default: mailfleetQuotaMessages (openldap), none (active-directory).'),
        maxConnections: z.string().optional(),
        disabled: z
          .string()
          .optional()
          .describe('Attribute that marks a disabled account. Default: mailfleetDisabled (openldap; ppolicy pwdAccountLockedTime also counts), userAccountControl (active-directory, bit 0x2).'),
        scramSha256: z
          .string()
          .optional()
          .describe('Attribute holding SCRAM-SHA-256 secrets ({SCRAM-SHA-256}i,salt,stored,server or scram-sha-256$…), readable by the service account. Default: none, and SCRAM is not offered.'),
      })
      .strict()
      .optional()
      .describe('Attribute names. Defaults depend on flavor (mail/mailAlternateAddress/uid or userPrincipalName/proxyAddresses/sAMAccountName).'),
    provision: z
      .enum(['openldap-pair', 'external', 'managed-ad'])
      .default('external')
      .describe('What the cloud engines create: an OpenLDAP provider/consumer pair, nothing (external), or AWS Managed Microsoft AD.'),
    tls: z
      .enum(['ldaps', 'starttls', 'none-in-vpc'])
      .optional()
      .describe(
        'provision managed-ad only: how cloud nodes protect binds to the domain (docs/ldap.md, "AWS Managed Microsoft AD"). ldaps: ldaps://<domain> verified against the CA bundle in the ldap-ca secret; starttls: ldap://<domain> upgraded with StartTLS, same CA; none-in-vpc: plaintext simple binds inside the VPC, an explicit choice. Default: ldaps.',
      ),
  })
  .strict();

const staticDirectorySchema = z
  .object({
    kind: z.literal('static'),
    file: z.string().default('users.yaml').describe('YAML users file, relative to the spec file.'),
  })
  .strict();

export const directorySchema = z.discriminatedUnion('kind', [staticDirectorySchema, ldapSchema]);
export type DirectorySpec = z.infer<typeof directorySchema>;
export type LdapDirectorySpec = z.infer<typeof ldapSchema>;

export const localPortsSchema = z
  .object({
    smtp: port.default(2525),
    submission: port.default(2587),
    submissions: port.default(2465),
    imap: port.default(2143),
    imaps: port.default(2993),
    pop3: port.default(2110),
    pop3s: port.default(2995),
    admin: port.default(9025),
    haproxyStats: port.default(9026),
    dedicatedBase: port
      .default(30000)
      .describe('First local port for dedicated tenant listeners; each tenant takes a block of 10.'),
    internalOffset: z
      .number()
      .int()
      .min(1)
      .max(60000)
      .default(10000)
      .describe('Behind HAProxy the daemon listens on public port + this offset.'),
  })
  .strict();

/** A client network for the edge lists: an IPv4 or IPv6 address, with or without a prefix length. */
const edgeCidr = z.string().refine((t) => parseNetwork(t) !== undefined, 'expected an address or CIDR like 203.0.113.0/24 or 2001:db8::/32');
/** What a message whose spam verdict says so gets, per recipient domain (filtering.policy, filtering.domains). */
const filterPolicyFields = {
  rejectScore: z.number().optional().describe('rspamd score from which a message is spam to refuse (then `spam` decides: 550 5.7.1 or Junk). rspamd\'s own reject (GTUBE, a DMARC p=reject, a forced action) counts too. Default: 15.'),
  junkScore: z.number().optional().describe('rspamd score from which a message is delivered to the recipient\'s Junk folder (special-use \\Junk). Default: 6.'),
  addHeaderScore: z.number().optional().describe('rspamd score from which `X-Spam: Yes` is added. Default: 5.'),
  rewriteSubjectScore: z.number().optional().describe('rspamd score from which the Subject gets subjectPrefix in front. Default: never.'),
  subjectPrefix: z.string().min(1).max(64).optional().describe('Default: ***SPAM***.'),
  spam: z.enum(['reject', 'junk']).optional().describe('What spam past rejectScore gets: refused with 550 5.7.1 (rspamd\'s reason), or delivered to Junk. Viruses are always refused. Default: reject.'),
  spfFail: z
    .enum(['score', 'junk', 'reject'])
    .optional()
    .describe('A sender whose domain\'s SPF policy says -all for the client address (rspamd R_SPF_FAIL): only scored, delivered to Junk, or refused with 550 5.7.1. Default: score.'),
};
export const filterPolicySchema = z.object(filterPolicyFields).strict();
export type FilterPolicySpec = z.infer<typeof filterPolicySchema>;

/** Inbound filtering and DKIM signing through rspamd (docs/filtering.md). */
export const filteringSchema = z
  .object({
    rspamd: z
      .object({
        url: z
          .string()
          .regex(/^https?:\/\/[^\s/]+\/?$/, 'expected the normal worker\'s base URL like http://127.0.0.1:11333')
          .default('http://127.0.0.1:11333')
          .describe('rspamd normal worker (its HTTP protocol, POST /checkv2). The local platform starts rspamd here when the host is loopback.'),
        timeoutMs: posInt.default(20000).describe('Longest wait for a verdict; past it rspamd counts as unavailable.'),
        onUnavailable: z
          .enum(['tempfail', 'accept'])
          .default('tempfail')
          .describe('rspamd down or too slow: answer 451 4.7.1 (the sender retries), or deliver unscanned (counted in mailfleetd_filter_unavailable_total).'),
        unhealthyAfterFailures: posInt
          .default(3)
          .describe('With onUnavailable tempfail: the daemon\'s /healthz fails its filter check (503) after this many scans in a row without a verdict, or at once when rspamd does not answer /ping (docs/filtering.md, "Health").'),
      })
      .strict()
      .prefault({}),
    antivirus: z.boolean().default(true).describe('Scan with ClamAV through rspamd\'s antivirus module (clamd); a virus is refused with 550 5.7.1.'),
    dkim: z
      .object({
        sign: z.boolean().default(true).describe('DKIM-sign authenticated submission mail of local domains (rspamd dkim_signing).'),
        selector: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected a DNS label like mailfleet').default('mailfleet'),
      })
      .strict()
      .prefault({}),
    policy: filterPolicySchema.prefault({}).describe('Spam actions for every domain without its own entry in filtering.domains.'),
    domains: z.record(domainName, filterPolicySchema).default({}).describe('Per recipient domain: overrides of filtering.policy.'),
  })
  .strict();
export type FilteringSpec = z.infer<typeof filteringSchema>;

/** The adaptive flow governor (docs/governor.md): targets, mode, and how it steps limits. */
export const GOVERNOR_MODES = ['observe', 'advise', 'enforce'] as const;
export const GOVERNED_KINDS = ['user', 'ip', 'domain', 'listener', 'login'] as const;
const posNum = z.number().positive();
export const governorSchema = z
  .object({
    mode: z
      .enum(GOVERNOR_MODES)
      .default(GOVERNOR.mode)
      .describe('observe: log what it would do; advise: log the `mailfleet limit set` command for a person to run; enforce: apply it on every daemon and HAProxy.'),
    targets: z
      .object({
        eventLoopLagMs: posNum.optional().describe(`Event-loop lag p99 over one interval, highest node, in ms. Default: ${GOVERNOR.eventLoopLagMs} when no target is given.`),
        storageLatencyMs: posNum.optional().describe(`Delivery time (end of DATA to durable in every Maildir) p99 over one interval, highest node, in ms. Default: ${GOVERNOR.storageLatencyMs} when no target is given.`),
        cpuPercent: posNum.optional().describe('Daemon CPU (100 = one core) over one interval, highest node. Default: no CPU target.'),
        connections: posInt.optional().describe('Sessions on all daemons together. Default: no connection target.'),
        refusalsPerSecond: posNum.optional().describe('Connections refused per second, all daemons together. Default: no refusal target.'),
      })
      .strict()
      .prefault({})
      .describe('Load targets: over any of them the governor lowers the heaviest scope; under releaseRatio × each of them for cooldownSeconds it raises back.'),
    intervalSeconds: posNum.default(GOVERNOR.intervalSeconds).describe('How often every daemon is read.'),
    settleSeconds: z.number().nonnegative().default(GOVERNOR.settleSeconds).describe('Least time between two lowering steps, so the last one can show.'),
    cooldownSeconds: z.number().nonnegative().default(GOVERNOR.cooldownSeconds).describe('Load must stay under the release threshold this long before each raising step.'),
    stepPercent: z.number().int().min(1).max(90).default(GOVERNOR.stepPercent).describe('A lowering step sets the scope this percentage under its sessions (or its limit, if lower).'),
    raiseStepPercent: z.number().int().min(1).max(100).default(GOVERNOR.raiseStepPercent).describe('A raising step adds this percentage of the value the scope had before the governor lowered it.'),
    floor: posInt.default(GOVERNOR.floor).describe('No governed limit goes below this; nor below the scope\'s fair share (sessions of its kind / active scopes of its kind).'),
    releaseRatio: z.number().gt(0).lt(1).default(GOVERNOR.releaseRatio).describe('Calm means that over the last cooldownSeconds the worst targeted signal averaged under this fraction of its target (the hysteresis band).'),
    releaseRefusalsPerSecond: z
      .number()
      .nonnegative()
      .default(GOVERNOR.releaseRefusalsPerSecond)
      .describe('A lowered scope is raised only once its own refusals (all daemons, per second) stayed at or under this for cooldownSeconds: a capped client still knocking is not let back in. 0: no refusal at all.'),
    scopes: z
      .array(z.enum(GOVERNED_KINDS))
      .min(1)
      .default([...GOVERNED_KINDS])
      .describe('Kinds of scope the governor may lower: user, ip, domain, listener (a tenant listener; a listener shared by several domains is never one), login (one user\'s loginsPerMinutePerUser: the password checks it causes, lowered only once no session scope can go lower).'),
  })
  .strict();
export type GovernorSpec = z.infer<typeof governorSchema>;

export const specSchema = z
  .object({
    $schema: z.string().optional(),
    version: z.literal(1).default(1).describe('Spec format version.'),
    platform: z
      .object({
        name: z
          .string()
          .regex(/^[a-z][a-z0-9-]{1,30}$/, 'expected a lower-case name of 2–31 letters, digits and dashes'),
        hostname: z.string().min(1).default('mail.localhost').describe('Name the daemons greet with.'),
        adminToken: z.string().min(16).optional().describe('Admin API token (prefer adminTokenEnv).'),
        adminTokenEnv: z.string().default('MAILFLEET_ADMIN_TOKEN'),
      })
      .strict(),
    regions: z
      .object({
        primary: regionSchema,
        dr: regionSchema.optional().describe('Disaster-recovery region, run at pilot-light size.'),
      })
      .strict()
      .optional()
      .describe('AWS placement. Required by the cloud engines, not by the local platform.'),
    dns: z
      .object({
        zoneName: domainName,
        hostedZoneId: z.string().regex(/^Z[A-Z0-9]{4,32}$/).optional(),
        recordPrefix: z.string().default('mail'),
      })
      .strict()
      .optional(),
    domains: z.array(domainSchema).min(1).describe('Local mail domains.'),
    limits: limitsSchema.prefault({}).describe('Platform-wide connection limits; domains may override.'),
    rates: ratesSchema.prefault({}),
    smtp: z
      .object({
        maxMessageSizeBytes: posInt.default(25 * 1024 * 1024),
        maxRecipients: posInt.default(100),
        maxLineLengthBytes: z.number().int().min(1000).default(4096),
        banner: z.string().optional(),
        allowInsecureAuth: z.boolean().default(false).describe('Allow AUTH before STARTTLS on submission (tests only).'),
        idleTimeoutSeconds: posInt
          .default(300)
          .describe('Close an SMTP session that sends nothing for this long (421 4.4.2), like Postfix smtpd_timeout.'),
        greetPauseMs: nonNegInt
          .default(0)
          .describe('Wait this long before the 220 greeting; a client that talks first gets 554 5.5.1 and is closed (Postfix postscreen_greet_wait). 0 still refuses bytes that arrived before the greeting was written.'),
        authFailureDelayMs: nonNegInt.default(2000).describe('Pause before each failed AUTH reply.'),
        relay: z
          .object({
            host: z.string().min(1).describe('Smarthost for mail submitted to non-local domains (mailfleetd does no MX routing itself).'),
            port: port.default(587),
            startTls: z.enum(['required', 'opportunistic', 'none']).default('required'),
            verifyCertificate: z.boolean().default(true),
            usernameEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/).optional().describe('Environment variable holding the relay AUTH user.'),
            passwordEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/).optional().describe('Environment variable holding the relay AUTH password.'),
            retrySeconds: posInt.default(60).describe('First retry after a temporary failure; each next waits twice as long, at most an hour.'),
            maxAgeHours: posInt.default(120).describe('Undelivered this long: the sender gets a bounce.'),
            concurrency: posInt.default(4),
          })
          .strict()
          .optional()
          .describe('Without it, submission accepts local recipients only (550 5.7.1 for others).'),
        rateLimitExceptions: z
          .array(z.string().regex(/^[0-9a-fA-F:.]+(\/\d{1,3})?$/, 'expected an IP address or CIDR like 10.0.0.0/8'))
          .default(['127.0.0.0/8', '::1'])
          .describe('Client addresses the SMTP rate limits (rates.*) skip, like Postfix smtpd_client_event_limit_exceptions = $mynetworks. Connection caps still apply. Empty it to rate-limit every client.'),
        hardErrorLimit: posInt
          .default(20)
          .describe('Error replies (4xx/5xx, unknown recipients included) a session may collect without delivering mail; the next one is followed by 421 4.7.0 and close (Postfix smtpd_hard_error_limit).'),
        recipientOvershootLimit: nonNegInt
          .default(1000)
          .describe('RCPTs past smtp.maxRecipients answered 452 4.5.3 without counting as errors; each one after these counts toward smtp.hardErrorLimit (Postfix smtpd_recipient_overshoot_limit).'),
        bareNewline: z
          .enum(['reject', 'normalize'])
          .default('reject')
          .describe('A bare LF or bare CR in DATA: reject the message with 550 5.5.2, or store it as CRLF (Postfix smtpd_forbid_bare_newline).'),
        postmaster: z
          .string()
          .regex(/^[^\s@]+@[^\s@]+$/, 'expected an address like postmaster@example.com')
          .optional()
          .describe('Where RCPT TO:<postmaster> (no domain, RFC 5321 4.5.1) is delivered, resolved by the directory like any recipient. Default: postmaster@<first domain>.'),
      })
      .strict()
      .prefault({}),
    maildir: z
      .object({
        tmpMaxAgeHours: posInt.default(36).describe('At start, files in Maildir tmp/ older than this are removed (the Maildir spec says 36 hours).'),
        // The storage inner loop (issue 24, lib/store/fair-gate.ts, docs/governor.md).
        durableWrites: z
          .object({
            maxInFlight: nonNegInt
              .default(FAIR_GATE_DEFAULTS.maxInFlight)
              .describe('Most durable writes of deliveries (a message file\'s durable write, the fsync of new/) in flight at once on one node: the ceiling of the adaptive limit. The limit shrinks while writes take longer than latencyTolerance × the fastest recently seen, and grows back while they do not; waiting writes are served round-robin per owner (the session\'s user, else its client address), a newly waiting owner first. 0 (the default) turns the gate off: every write goes to the disk at once, in arrival order. Turn it on (e.g. 64) where one sender can fill a volume that serves one write at a time (an IOPS cap): on a disk that batches fsyncs (ext4) the latency-driven limit cost up to half the delivery throughput at 64 concurrent deliveries (bench/durable-gate, docs/governor.md).'),
            latencyTolerance: z
              .number()
              .min(1)
              .default(FAIR_GATE_DEFAULTS.latencyTolerance)
              .describe('The adaptive limit shrinks while a durable write takes longer than this × the fastest one of the last two windows (plus latencySlackMs).'),
            latencySlackMs: nonNegInt
              .default(FAIR_GATE_DEFAULTS.latencySlackMs)
              .describe('Milliseconds added to that bound, so timer noise on a fast disk does not read as queueing.'),
          })
          .strict()
          .prefault({})
          .describe('The fair, adaptive gate in front of durable delivery writes (docs/governor.md, "The inner loop").'),
      })
      .strict()
      .prefault({}),
    audit: z
      .object({
        enabled: z
          .boolean()
          .default(false)
          .describe('Journal every accepted message (envelope + bytes) to a durable local spool before the 250, and ship it to the audit archive bucket (docs/audit.md).'),
        retentionDays: posInt.default(AUDIT.retentionDays).describe('S3 Object Lock default retention of each journal object, in days.'),
        mode: z
          .enum(['governance', 'compliance'])
          .default(AUDIT.mode)
          .describe('Object Lock mode: governance (principals with s3:BypassGovernanceRetention may delete early) or compliance (nobody can, not even root, until retention ends).'),
        archiveAfterDays: posInt.default(AUDIT.archiveAfterDays).describe('Lifecycle: journal objects move to archiveStorageClass after this many days.'),
        archiveStorageClass: z.enum(['GLACIER_IR', 'GLACIER', 'DEEP_ARCHIVE']).default(AUDIT.archiveStorageClass),
        batchMaxEntries: posInt.default(AUDIT.batchMaxEntries).describe('Most journal entries one uploaded batch holds.'),
        batchMaxBytes: posInt.default(AUDIT.batchMaxBytes).describe('Most message bytes one uploaded batch holds (an entry bigger than this is a batch of its own).'),
        flushIntervalSeconds: posInt.default(AUDIT.flushIntervalSeconds).describe('A partial batch is shipped after this long.'),
      })
      .strict()
      .prefault({})
      .describe('Audit journal (監査保存): every accepted message, kept under S3 Object Lock.'),
    imap: z
      .object({
        idleTimeoutSeconds: posInt.default(1800),
        preAuthTimeoutSeconds: posInt.default(60),
        maxLineLengthBytes: z.number().int().min(1000).default(65536),
        maxLiteralBytes: posInt.default(50 * 1024 * 1024),
        maxBadCommands: posInt.default(20),
        maxUnauthenticatedCommands: posInt.default(20),
        authFailureDelayMs: nonNegInt.default(2000),
        pollIntervalSeconds: posInt.default(10).describe('IDLE rescan interval for deliveries made on other nodes.'),
        allowInsecureAuth: z.boolean().default(false),
        // IMAP work limits (docs/faults.md): bound what one command costs the shared event loop and memory.
        maxPreAuthLiteralBytes: posInt
          .default(IMAP_WORK.maxPreAuthLiteralBytes)
          .describe('Largest literal accepted before login; a bigger one is refused without reading it (NO [TOOBIG], or BAD and BYE for LITERAL+).'),
        maxLiteralBytesInFlight: posInt
          .default(IMAP_WORK.maxLiteralBytesInFlight)
          .describe('Literal bytes all IMAP sessions of one process may hold at once; over it a literal is refused with NO [LIMIT].'),
        maxSearchKeys: posInt.default(IMAP_WORK.maxSearchKeys).describe('Search keys in one SEARCH (NO [LIMIT] beyond).'),
        maxSearchDepth: posInt.default(IMAP_WORK.maxSearchDepth).describe('Nesting of NOT, OR and parentheses in one SEARCH (NO [LIMIT] beyond).'),
        maxSequenceSetRanges: posInt
          .default(IMAP_WORK.maxSequenceSetRanges)
          .describe('Comma-separated ranges in one sequence or UID set (NO [LIMIT] beyond).'),
        maxMimeParts: posInt
          .default(IMAP_WORK.maxMimeParts)
          .describe('MIME parts shown in BODYSTRUCTURE; a message with more is shown as one part (as Dovecot does).'),
        maxMimeDepth: posInt.default(IMAP_WORK.maxMimeDepth).describe('MIME nesting shown in BODYSTRUCTURE; deeper messages are shown as one part.'),
        maxHeaderBytes: posInt
          .default(IMAP_WORK.maxHeaderBytes)
          .describe('Largest header block of a MIME part; a message with a bigger one is shown as one part, its ENVELOPE from the first maxHeaderBytes.'),
        keepaliveSeconds: posInt
          .default(IMAP_WORK.keepaliveSeconds)
          .describe('While a client IDLEs, send "* OK Still here" this often (with up to 10% jitter); keep it below the NLB idle timeout (350 s).'),
        // --- CONDSTORE/QRESYNC
        expungeHistoryUids: posInt
          .default(IMAP_WORK.expungeHistoryUids)
          .describe('Expunged UIDs per folder whose expunge modseq the UID list keeps for QRESYNC; a client that last synchronised before the oldest kept gets every missing UID it knows as VANISHED (EARLIER).'),
        // --- end CONDSTORE/QRESYNC
        // Change log beside the UID list (issue 20, docs/imap-performance.md).
        changeLogBytes: nonNegInt
          .default(IMAP_WORK.changeLogBytes)
          .describe('Bytes the append-only change log beside a folder\'s UID list may reach before the next flag change, APPEND or EXPUNGE rewrites the whole list with the logged changes folded in. 0 (the default) rewrites the list on every change and keeps no log, as daemons before the log did: nodes of an older version read the list only, so turn the log on (65536 measured best) only once every node sharing the mail root runs a version with it (docs/imap-performance.md).'),
        // Folder lock kept between passes (issue 20, docs/imap-performance.md).
        folderLockHoldMs: nonNegInt
          .default(IMAP_WORK.folderLockHoldMs)
          .describe('Milliseconds a folder\'s lock file is kept after a flag change, APPEND, EXPUNGE or new-mail scan, so the next one on this node reuses it instead of taking it again (at most 100 ms in a row, then it is released). Other nodes and processes wait at most this much longer for the folder; 0 releases the lock after every change.'),
        // LIST-EXTENDED and COMPRESS=DEFLATE bounds (issue 21, docs/imap-pop3.md).
        maxListPatterns: posInt
          .default(IMAP_WORK.maxListPatterns)
          .describe('Mailbox patterns in one LIST-EXTENDED LIST "" (p1 p2 …) (NO [LIMIT] beyond).'),
        maxCompressMemoryBytes: posInt
          .default(IMAP_WORK.maxCompressMemoryBytes)
          .describe('zlib memory all COMPRESS=DEFLATE sessions of one process may hold (about 100 KiB each); beyond it COMPRESS answers NO [LIMIT].'),
      })
      .strict()
      .prefault({}),
    pop3: z
      .object({
        idleTimeoutSeconds: posInt.default(600),
        preAuthTimeoutSeconds: posInt.default(60).describe('Idle timeout before a successful login.'),
        maxBadCommands: posInt.default(20),
        maxUnauthenticatedCommands: posInt.default(20).describe('Commands allowed before a successful login.'),
        authFailureDelayMs: nonNegInt.default(2000),
        allowInsecureAuth: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    auth: z
      .object({
        failuresPerIp: posInt
          .default(30)
          .describe('Failed logins one client IP may make within windowSeconds before every login from it is refused (all services).'),
        failuresPerUser: posInt
          .default(10)
          .describe('Failed logins for one login name within windowSeconds before logins as it are refused, from any IP.'),
        windowSeconds: posInt.default(900).describe('Sliding window the failure counts cover; a lockout ends when old failures age out.'),
        trackedKeys: posInt.default(100000).describe('Most IPs plus login names remembered per node; the oldest are forgotten first.'),
        concurrentChecksPerIp: posInt
          .default(4)
          .describe('Password checks one client IP may have in flight at once, per node; more get a temporary failure (IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP], SMTP 454 4.7.0) without checking. Bounds the hashing one address can force.'),
        concurrentChecksPerUser: posInt
          .default(1)
          .describe('Password checks one login name may have running at once, per node, where the directory bounds its checks (the static directory hashes on the thread pool); its further logins wait their turn while other users\' checks go ahead. A user re-authenticating in a loop then holds one hashing thread, not all of them (docs/governor.md).'),
        // Strong authentication (docs/auth.md).
        requireAppPasswords: z
          .boolean()
          .default(false)
          .describe('Refuse the main password over IMAP, POP3 and SMTP AUTH: only app passwords, SCRAM-SHA-256 and OIDC tokens log in.'),
        scramSha256: z
          .boolean()
          .default(true)
          .describe('Offer SCRAM-SHA-256 (IMAP, POP3) where the directory holds SCRAM secrets (static: always; LDAP: with directory.attributes.scramSha256).'),
        oidc: z
          .object({
            issuer: z
              .string()
              .regex(/^(https:\/\/[^\s]+|http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(\/[^\s]*)?)$/, 'expected an https:// issuer URL (http:// only on loopback)')
              .describe('OIDC issuer, exactly as tokens carry it in iss; its keys come from <issuer>/.well-known/openid-configuration.'),
            audience: z.string().min(1).describe('Required aud of the tokens (the client ID registered for mail).'),
            userClaim: z.string().min(1).default('email').describe('Claim naming the login (an address the directory knows).'),
            clockToleranceSeconds: nonNegInt.default(30).describe('Clock skew allowed on exp and nbf.'),
            timeoutMs: posInt.default(5000).describe('Timeout of the discovery and JWKS requests; an issuer that does not answer is a temporary failure.'),
            jwksCacheSeconds: posInt.default(600).describe('How long fetched keys are used before they are fetched again (unknown key IDs refetch at once).'),
          })
          .strict()
          .optional()
          .describe('Accept OAUTHBEARER (IMAP, POP3) and XOAUTH2 (IMAP, POP3, SMTP) with JWTs from this issuer. Default: no token logins.'),
      })
      .strict()
      .prefault({})
      .describe('Brute-force lockout window, per node (while locked, logins are refused without checking the password), and the strong-authentication options.'),
    proxy: z
      .object({
        trustedNetworks: z
          .array(
            z
              .string()
              .regex(/^(\d{1,3}(\.\d{1,3}){3}\/\d{1,2}|[0-9a-fA-F:]+\/\d{1,3})$/, 'expected a CIDR like 10.40.0.0/16 or fd00::/8'),
          )
          .min(1)
          .optional()
          .describe(
            'Who may send the PROXY v2 header to daemon ports behind HAProxy; a header from any other address is refused. Default: loopback locally; the VPC CIDRs (primary and DR) in the cloud.',
          ),
      })
      .strict()
      .prefault({}),
    edge: z
      .object({
        smtpGreetPauseMs: nonNegInt
          .max(30000)
          .default(0)
          .describe(
            "HAProxy holds each SMTP (MX, port 25) connection this long before the daemon's greeting; a client that sends anything first gets 554 5.5.1 from HAProxy and never reaches a daemon (Postfix postscreen's pregreet test, at the edge). Delays every MX greeting by this much. 0: off (the daemon's own smtp.greetPauseMs still applies).",
          ),
        connectionRatePerSource: z
          .object({
            smtp: nonNegInt.default(0),
            submission: nonNegInt.default(0),
            imap: nonNegInt.default(0),
            pop3: nonNegInt.default(0),
          })
          .strict()
          .prefault({})
          .describe(
            "New connections one client address may open per 10 s on one listener, per HAProxy node; more get the protocol's busy reply (like the per-source concurrent cap). 0: no rate limit. Addresses in edge.allow are exempt.",
          ),
        deny: z
          .array(edgeCidr)
          .default([])
          .describe('Client networks refused at the edge (closed before any byte); `mailfleet edge block <cidr>` adds to it live.'),
        allow: z
          .array(edgeCidr)
          .default([])
          .describe('Client networks never refused by edge.deny nor by the connection-rate limits (the concurrent caps still apply); `mailfleet edge allow <cidr>` adds to it live.'),
      })
      .strict()
      .prefault({})
      .describe('The L7 edge in the HAProxy tier: pregreet refusal, per-source connection rates, deny and allow lists.'),
    filtering: filteringSchema
      .optional()
      .describe('Inbound spam and virus filtering, SPF/DKIM/DMARC checks and DKIM signing through rspamd. Without it mail is not scanned.'),
    quotas: quotasSchema.prefault({}).describe('Mailbox quotas per user and per domain (docs/quota.md); the directory\'s quota attribute (directory.attributes.quota) and live `mailfleet quota set` override.'),
    directory: directorySchema.prefault({ kind: 'static' }),
    redis: z
      .object({
        url: z.string().regex(/^rediss?:\/\//, 'expected redis:// or rediss:// URL'),
        leaseSeconds: posInt.default(30).describe('Connection lease TTL; live sessions refresh it.'),
        // --- cloud provisioning (docs/engines.md) ---
        provision: z
          .enum(['elasticache', 'external'])
          .default('elasticache')
          .describe('In the cloud: `elasticache` provisions a Valkey replication group per region (TLS, AUTH token, reachable from the mail nodes only) and the nodes use it instead of `url`; `external` keeps `url` as given.'),
        nodeType: z.string().default('cache.t4g.small').describe('ElastiCache node type of the provisioned replication group (two nodes, Multi-AZ).'),
      })
      .strict()
      .optional()
      .describe('Fleet-wide counters and cross-node IDLE events. Without it counters are per node.'),
    tiers: z
      .object({
        proxy: tierSize.prefault({ instanceType: 'c7g.large', minNodes: 2, maxNodes: 6 }),
        mail: tierSize.prefault({ instanceType: 'm7g.large', minNodes: 2, maxNodes: 10 }),
        maxConnectionsPerMailNode: posInt
          .default(20000)
          .describe('Scale-out target: connections one mail node should carry.'),
        proxyMaxConnectionsPerNode: posInt
          .default(200000)
          .describe('Ceiling for HAProxy global maxconn on one proxy node; no listener cap may exceed it.'),
      })
      .strict()
      .prefault({}),
    storage: storageSchema.prefault({ kind: 'glusterfs' }),
    dr: z
      .object({
        rpoSeconds: posInt.default(60),
        rtoSeconds: posInt.default(300),
        mode: z.enum(['pilot-light', 'warm-standby']).default('pilot-light'),
      })
      .strict()
      .optional(),
    local: z
      .object({
        bindAddress: z.string().default('127.0.0.1'),
        dataDir: z.string().default('./var'),
        haproxy: z.enum(['auto', 'on', 'off']).default('auto'),
        ports: localPortsSchema.prefault({}),
      })
      .strict()
      .prefault({}),
    ops: z
      .object({
        daemons: z
          .array(z.string().regex(/^https?:\/\/[^\s]+$/, 'expected an http:// or https:// admin URL'))
          .min(1)
          .optional()
          .describe('Admin API URLs of every daemon node, for `mailfleet top` and `mailfleet limit`. Default: the local daemon (http://<local.bindAddress>:<local.ports.admin>).'),
      })
      .strict()
      .optional()
      .describe('Where the ops CLI finds the fleet.'),
    governor: governorSchema
      .optional()
      .describe('The adaptive flow governor (`mailfleet governor run`, docs/governor.md). Default: every option at its default, mode observe.'),
  })
  .strict();

export type Spec = z.infer<typeof specSchema>;
export type SpecInput = z.input<typeof specSchema>;
