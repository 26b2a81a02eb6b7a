/**
 * plan → haproxy.cfg (and the Lua file that speaks the busy replies). Pure: text out, nothing read or run.
 *
 * One frontend per listener (tenant × protocol = one "virtual server"). Its connection limit is a process
 * variable (`proc.cap_<listener>`) checked by a rule, not the frontend's `maxconn`, because:
 *   - frontend `maxconn` does not refuse: extra clients wait silently in the kernel accept queue;
 *   - raising `maxconn` at runtime on a full frontend kills HAProxy 2.6.12 (haproxy#2726), whereas a
 *     variable can be changed live at any time (`experimental-mode on; set var proc.cap_x int(N)`).
 * The frontend's real `maxconn` sits above the cap (see frontendMaxconn) so connections past the cap are
 * accepted and answered with the protocol's busy reply by a Lua applet, then closed. On implicit-TLS
 * listeners (TLS is the daemon's, passed through) an over-cap connection goes to an internal frontend that
 * completes the handshake with the node's certificate and then gives the same reply inside TLS
 * (busyTlsFrontendName). docs/haproxy.md has the table.
 */
import { createHash } from 'node:crypto';
import { MailfleetError } from '../errors.js';
import { SERVICE_OF } from '../plan/build.js';
import { BUSY_HEADROOM_MIN, GLOBAL_RESERVE, proxyNumbers } from '../plan/proxy.js';
import type { Plan, PlannedListener } from '../plan/types.js';
import type { Protocol, Service } from '../spec/schema.js';
import type { Renderer, RenderOptions } from './types.js';

// The numbers live in the plan (lib/plan/proxy.ts); re-exported for the renderer's callers.
export { BUSY_HEADROOM_MIN, GLOBAL_RESERVE, frontendMaxconn } from '../plan/proxy.js';
/**
 * Kernel accept queue of each frontend, at least this deep: clients past maxconn wait there (rather than
 * having their SYNs dropped and retried after 1, 3, 7 s) until a slot frees.
 */
export const BACKLOG_MIN = 1024;
/** Cloud: HTTP health endpoint for the NLB target groups and the ASG (`GET /healthz`). */
export const CLOUD_HEALTH_PORT = 8404;
/**
 * Cloud: HAProxy's Prometheus exporter on loopback (no PROXY header: the node's CloudWatch agent scrapes
 * it), the source of the per-listener connection metric the saturation alarms watch.
 */
export const CLOUD_METRICS_PORT = 8405;
/** Cloud: where cloud-init puts the rendered files. */
export const CLOUD_HAPROXY_DIR = '/etc/haproxy';
export const CLOUD_RUN_DIR = '/run/haproxy';
export const BUSY_LUA_FILE = 'mailfleet-busy.lua';
/** Certificate + key (one PEM) the busy frontends of implicit-TLS listeners answer with. */
export const BUSY_TLS_PEM_FILE = 'mailfleet-busy.pem';
/** The edge's client-network lists (one address or CIDR a line), changed live with `add acl` / `del acl`. */
export const EDGE_DENY_FILE = 'mailfleet-deny.acl';
export const EDGE_ALLOW_FILE = 'mailfleet-allow.acl';
/** The Lua service that answers an SMTP client talking before the greeting (edge.smtpGreetPauseMs). */
export const PREGREET_SERVICE = 'mf_pregreet_smtp';
/**
 * Mail backends: connection attempts retried after the first fails (refused, or no answer within `timeout
 * connect`) before the client is dropped. HAProxy's own default, said out loud because redispatch needs it.
 * @default 3
 */
export const MAIL_BACKEND_RETRIES = 3;
/**
 * Mail backends: every Nth retry goes to another node (`option redispatch N`). A node that dies (scale-in,
 * replacement, crash) stays UP for HAProxy until `fall` checks fail (seconds); without redispatch every
 * retry goes back to it (a sticky client's node, or the node leastconn picked) and the client is dropped.
 * 1 (every retry) rather than HAProxy's -1 (the last one): a refused connect says the daemon is gone, and
 * on a node that does not answer at all each retry on it costs `timeout connect`. Source affinity yields
 * (the stick entry then names the new node); it only keeps indexes warm, it is not needed for correctness.
 * @default 1
 */
export const MAIL_BACKEND_REDISPATCH_EVERY = 1;
/** Per-source stick tables: entries and idle expiry. */
export const SOURCE_TABLE_SIZE = '100k';
export const SOURCE_TABLE_EXPIRE = '10m';

/**
 * Whether a cap can be set live as a variable on a frontend of this maxconn while keeping some headroom for
 * busy replies (up to BUSY_HEADROOM_MIN, or half the cap for small caps); otherwise a reload is needed.
 */
export function capFitsFrontend(cap: number, maxconn: number): boolean {
  return cap + Math.min(BUSY_HEADROOM_MIN, Math.ceil(cap / 2)) <= maxconn;
}

/** The process variable holding a listener's live connection cap. Slugs are [a-z0-9-], so this is injective. */
export function capVariable(listener: string): string {
  return `proc.cap_${listener.replace(/-/g, '_')}`;
}

/** The one-entry table counting connections a listener admitted (its cap is checked against it). */
export function admittedTableName(listener: string): string {
  return `adm-${listener}`;
}

export function sourceTableName(listener: string): string {
  return `st-${listener}`;
}

/** Mail node DNS name in the cloud: a Cloud Map (private DNS) service the engines register the mail ASG in. */
export function cloudMailDiscoveryName(plan: Pick<Plan, 'platform' | 'namePrefix'>): string {
  // A namePrefix gives each instance its own name in a shared zone (one label: '/' becomes '--').
  const label = plan.namePrefix === undefined ? 'mailfleetd' : `mailfleetd--${plan.namePrefix.replaceAll('/', '--')}`;
  return `${label}.${plan.platform}.internal`;
}

export interface HaproxyRenderOptions extends RenderOptions {
  /**
   * Upper bound for global maxconn, e.g. from the machine's open-file limit (HAProxy needs about two
   * descriptors per connection and refuses to start when it cannot get them).
   * @default - no bound beyond the plan's
   */
  readonly maxConnectionsCeiling?: number;
  /**
   * Where the config loads the busy-reply Lua file from.
   * @default - <runDir>/mailfleet-busy.lua locally, /etc/haproxy/mailfleet-busy.lua in the cloud
   */
  readonly luaPath?: string;
  /**
   * The PEM (certificate then key) that implicit-TLS listeners use to say their busy reply inside TLS.
   * @default - <runDir>/mailfleet-busy.pem locally, /etc/haproxy/mailfleet-busy.pem in the cloud
   */
  readonly tlsPemPath?: string;
  /**
   * Folder of the edge's deny and allow lists (mailfleet-deny.acl, mailfleet-allow.acl).
   * @default - <runDir> locally, /etc/haproxy in the cloud
   */
  readonly edgeListDir?: string;
}

export interface HaproxyFrontend {
  readonly listener: PlannedListener;
  readonly bindHost: string;
  readonly bindPort: number;
  /** The listener's connection cap (the process variable's initial value). */
  readonly cap: number;
  /** The frontend's real maxconn (cap + busy headroom, clamped to the global). */
  readonly maxconn: number;
  readonly backend: string;
}

/** Everything the config is made of, computed once: the renderer, the process manager and the applier share it. */
export interface HaproxyLayout {
  readonly target: 'local' | 'cloud';
  readonly runDir: string;
  readonly adminSocket: string;
  readonly masterSocket: string;
  readonly luaPath: string;
  /** Only read when some listener has implicit TLS. */
  readonly tlsPemPath: string;
  /** The edge lists (edge.deny / edge.allow plus live changes): HAProxy ACL files, one network a line. */
  readonly denyListPath: string;
  readonly allowListPath: string;
  /**
   * Prefix of the busy-TLS frontends' abstract sockets. Abstract names are shared by every process in a
   * network namespace, so two local HAProxies (two data dirs, parallel tests) each get their own.
   */
  readonly abstractPrefix: string;
  readonly globalMaxconn: number;
  /** Why the global is lower than the sum of the frontends, if it is. */
  readonly globalClampedBy?: string;
  readonly frontends: readonly HaproxyFrontend[];
  /** Local stats page / cloud health endpoint. */
  readonly monitorPort: number;
}

const FAMILY: Readonly<Record<Service, 'smtp' | 'imap' | 'pop3'>> = {
  smtp: 'smtp',
  submission: 'smtp',
  imap: 'imap',
  pop3: 'pop3',
};

function backendName(protocol: Protocol, affinity: PlannedListener['affinity']): string {
  return affinity === 'source' ? `mail-${protocol}-sticky` : `mail-${protocol}`;
}

export function haproxyLayout(plan: Plan, opts: HaproxyRenderOptions = {}): HaproxyLayout {
  const target = opts.target ?? 'cloud';
  const local = plan.spec.local;
  const runDir = (opts.runDir ?? (target === 'local' ? `${local.dataDir.replace(/\/+$/, '')}/run/haproxy` : CLOUD_RUN_DIR)).replace(
    /\/+$/,
    '',
  );
  const luaPath = opts.luaPath ?? (target === 'local' ? `${runDir}/${BUSY_LUA_FILE}` : `${CLOUD_HAPROXY_DIR}/${BUSY_LUA_FILE}`);
  const tlsPemPath = opts.tlsPemPath ?? (target === 'local' ? `${runDir}/${BUSY_TLS_PEM_FILE}` : `${CLOUD_HAPROXY_DIR}/${BUSY_TLS_PEM_FILE}`);
  const edgeDir = (opts.edgeListDir ?? (target === 'local' ? runDir : CLOUD_HAPROXY_DIR)).replace(/\/+$/, '');
  // The plan's own numbers (recomputed from its listeners, so a plan patched in place still agrees).
  const numbers = proxyNumbers(plan.listeners, plan.spec.tiers.proxyMaxConnectionsPerNode);
  let globalMaxconn = numbers.globalMaxConnections;
  let globalClampedBy = numbers.clampedBy;
  if (opts.maxConnectionsCeiling !== undefined && globalMaxconn > opts.maxConnectionsCeiling) {
    globalMaxconn = opts.maxConnectionsCeiling;
    globalClampedBy = 'the machine open-file limit';
  }
  const frontends = plan.listeners.map((l): HaproxyFrontend => {
    const fe = numbers.frontends[l.name];
    const cap = l.limits.listenerConnections;
    return {
      listener: l,
      bindHost: target === 'local' ? local.bindAddress : '',
      bindPort: target === 'local' ? l.localPort : l.publicPort,
      cap,
      maxconn: Math.min(fe?.maxconn ?? cap, globalMaxconn),
      backend: backendName(l.protocol, l.affinity),
    };
  });
  return {
    target,
    runDir,
    adminSocket: `${runDir}/admin.sock`,
    masterSocket: `${runDir}/master.sock`,
    luaPath,
    tlsPemPath,
    denyListPath: `${edgeDir}/${EDGE_DENY_FILE}`,
    allowListPath: `${edgeDir}/${EDGE_ALLOW_FILE}`,
    abstractPrefix: `mf-${createHash('sha256').update(target === 'local' ? runDir : `cloud:${plan.platform}`).digest('hex').slice(0, 10)}-`,
    globalMaxconn,
    globalClampedBy,
    frontends,
    monitorPort: target === 'local' ? local.ports.haproxyStats : CLOUD_HEALTH_PORT,
  };
}

const NAME_RE = /^[a-z0-9][a-z0-9-]{0,99}$/;
const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n > 0;
const isPort = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535;

/**
 * What `haproxy -c` lets through: it accepts `maxconn abc`, and knows nothing of our caps or of the daemon
 * ports behind it. Returns the problems; renderHaproxyConfig throws them as PLAN_INVALID.
 */
export function checkHaproxyLayout(plan: Plan, layout: HaproxyLayout): string[] {
  const issues: string[] = [];
  const nodeCap = plan.spec.tiers.proxyMaxConnectionsPerNode;
  if (!isCount(layout.globalMaxconn)) issues.push(`global maxconn ${String(layout.globalMaxconn)} is not a positive integer`);
  const names = new Set<string>();
  const ports = new Map<number, string>();
  const claim = (port: number, what: string) => {
    if (!isPort(port)) {
      issues.push(`${what}: port ${String(port)} is not a port number (1–65535)`);
      return;
    }
    const other = ports.get(port);
    if (other !== undefined) issues.push(`${what}: port ${port} clashes with ${other}`);
    else ports.set(port, what);
  };
  claim(layout.monitorPort, layout.target === 'local' ? 'stats page' : 'health endpoint');
  if (layout.target === 'cloud') claim(CLOUD_METRICS_PORT, 'metrics endpoint');
  for (const fe of layout.frontends) {
    const l = fe.listener;
    const { listenerConnections: cap, sourceConnections: src } = l.limits;
    if (!NAME_RE.test(l.name)) issues.push(`listener name "${l.name}" is not usable as a HAProxy frontend name`);
    if (names.has(l.name)) issues.push(`listener ${l.name} appears twice`);
    names.add(l.name);
    if (!isCount(cap)) issues.push(`listener ${l.name}: listenerConnections ${String(cap)} is not a positive integer`);
    if (!isCount(src)) issues.push(`listener ${l.name}: sourceConnections ${String(src)} is not a positive integer`);
    if (isCount(cap) && isCount(src) && src > cap)
      issues.push(`listener ${l.name}: sourceConnections (${src}) exceeds listenerConnections (${cap})`);
    if (isCount(cap) && cap > nodeCap)
      issues.push(`listener ${l.name}: listenerConnections (${cap}) exceeds the HAProxy global cap tiers.proxyMaxConnectionsPerNode (${nodeCap})`);
    else if (isCount(cap) && isCount(layout.globalMaxconn) && cap > layout.globalMaxconn)
      issues.push(`listener ${l.name}: listenerConnections (${cap}) exceeds global maxconn (${layout.globalMaxconn}, limited by ${layout.globalClampedBy ?? 'the sum'})`);
    claim(fe.bindPort, `listener ${l.name}`);
  }
  // Locally the daemon sockets behind the proxy share the host: they must not sit on a frontend port.
  const daemonPorts = new Set(plan.listeners.map((l) => (layout.target === 'local' ? l.localDaemonPort : l.daemonPort)));
  for (const p of daemonPorts) {
    if (!isPort(p)) issues.push(`daemon port ${String(p)} is not a port number (1–65535)`);
    else if (layout.target === 'local' && ports.has(p)) issues.push(`daemon port ${p} clashes with ${ports.get(p)}`);
  }
  if (layout.target === 'local') {
    const admin = plan.spec.local.ports.admin;
    if (ports.has(admin)) issues.push(`local admin port ${admin} clashes with ${ports.get(admin)}`);
  }
  return issues;
}

/** tcp-check sequences that speak each protocol's greeting (and say goodbye, so the daemon logs no error). */
function healthCheck(protocol: Protocol, tls: PlannedListener['tls']): string[] {
  const connect = tls === 'implicit' ? 'tcp-check connect ssl send-proxy' : 'tcp-check connect send-proxy';
  switch (FAMILY[SERVICE_OF[protocol]]) {
    case 'smtp':
      return [connect, 'tcp-check expect rstring ^220', 'tcp-check send "QUIT\\r\\n"', 'tcp-check expect rstring ^221'];
    case 'imap':
      return [connect, 'tcp-check expect rstring ^\\*\\ OK', 'tcp-check send "hc LOGOUT\\r\\n"', 'tcp-check expect rstring ^\\*\\ BYE'];
    case 'pop3':
      return [connect, 'tcp-check expect rstring ^\\+OK', 'tcp-check send "QUIT\\r\\n"', 'tcp-check expect rstring ^\\+OK'];
  }
}

/** Idle timeouts a little above the daemon's, so the daemon closes with its own reply before HAProxy cuts. */
export function idleTimeoutSeconds(plan: Plan, service: Service): number {
  const s = plan.spec;
  switch (FAMILY[service]) {
    case 'imap':
      // IDLE clients sit silent for up to 29 minutes (RFC 2177): never below 30 minutes.
      return Math.max(30 * 60, s.imap.idleTimeoutSeconds + 60);
    case 'pop3':
      return s.pop3.idleTimeoutSeconds + 60;
    case 'smtp':
      return 6 * 60; // RFC 5321 4.5.3.2: servers wait at least 5 minutes for a command.
  }
}

const fmtSeconds = (s: number) => (s % 60 === 0 ? `${s / 60}m` : `${s}s`);

export function luaServiceName(service: Service, reason: 'listener' | 'source'): string {
  return `mf_busy_${FAMILY[service]}_${reason}`;
}

/**
 * The internal frontend (and its backend, same name) that completes a TLS handshake and then gives the busy
 * reply: implicit-TLS listeners send their over-cap connections there over an abstract unix socket.
 */
export function busyTlsFrontendName(service: Service, reason: 'listener' | 'source'): string {
  return `busy-tls-${FAMILY[service]}-${reason}`;
}

/** Connections the busy-TLS frontends answer at once; more wait in their kernel queue (each is answered and closed). */
export const BUSY_TLS_MAXCONN = 200;

export function renderHaproxyConfig(plan: Plan, opts: HaproxyRenderOptions = {}): string {
  const layout = haproxyLayout(plan, opts);
  const issues = checkHaproxyLayout(plan, layout);
  if (issues.length > 0)
    throw new MailfleetError('PLAN_INVALID', `cannot render haproxy.cfg:\n  - ${issues.join('\n  - ')}`, { status: 400, details: { issues } });
  const local = layout.target === 'local';
  const out: string[] = [];
  const sum = layout.frontends.reduce((a, f) => a + f.maxconn, 0);
  out.push(
    `# Rendered by mailfleet from the plan of "${plan.platform}" (target: ${layout.target}). Do not edit: re-render.`,
    `# ${layout.frontends.length} frontends, one per listener (tenant x protocol). Sum of frontend maxconn: ${sum}.`,
    `# A listener's cap is proc.cap_<listener>; 'mailfleet limit set listener:<name> N' changes it live.`,
    'global',
    `    maxconn ${layout.globalMaxconn}${layout.globalClampedBy ? `  # sum + ${GLOBAL_RESERVE} exceeds ${layout.globalClampedBy}` : ''}`,
    `    stats socket ${layout.adminSocket} mode 600 level admin expose-fd listeners`,
    '    stats timeout 30s',
    local ? '    log stderr format raw local0 info' : '    log /dev/log local0 info',
    // Bounds how long an old worker keeps IDLE sessions after a reload (they reconnect to the new one).
    '    hard-stop-after 5m',
    `    lua-load ${layout.luaPath}`,
  );
  for (const fe of layout.frontends) out.push(`    set-var ${capVariable(fe.listener.name)} int(${fe.cap})`);
  // Large answers: every mail node is an A record of one name (512-byte UDP answers hold about 30).
  if (!local) out.push('', 'resolvers vpc', '    parse-resolv-conf', '    accepted_payload_size 8192', '    hold valid 10s', '    hold nx 30s');
  out.push(
    '',
    'defaults',
    '    mode tcp',
    '    log global',
    '    option tcplog',
    '    option dontlognull',
    '    timeout connect 5s',
    '    timeout client 6m',
    '    timeout server 6m',
    '    timeout client-fin 30s',
    '    timeout server-fin 30s',
    '    timeout check 5s',
    '    default-server inter 2s fall 3 rise 2',
  );
  // Cloud: the NLB target groups have PROXY v2 on, and NLB health checks carry the header too, so the
  // health bind must accept it (a plain bind answers them 400 and every target is unhealthy).
  out.push(
    '',
    local ? 'frontend stats' : 'frontend health',
    '    mode http',
    '    option dontlog-normal',
    `    bind ${local ? `${layout.frontends[0]?.bindHost ?? '127.0.0.1'}` : ''}:${layout.monitorPort}${local ? '' : ' accept-proxy'}`,
    '    maxconn 50',
    '    timeout client 30s',
    '    monitor-uri /healthz',
  );
  if (local) out.push('    stats enable', '    stats uri /', '    stats refresh 5s');
  // The health endpoint reports the service, not the proxy: 503 while any mail backend has no usable server.
  else for (const b of new Set(layout.frontends.map((f) => f.backend))) out.push(`    monitor fail if { nbsrv(${b}) lt 1 }`);
  // Cloud: per-frontend sessions for the CloudWatch agent (lib/render/cloudwatch-agent.ts), loopback only.
  if (!local)
    out.push(
      '',
      'frontend metrics',
      '    mode http',
      '    option dontlog-normal',
      `    bind 127.0.0.1:${CLOUD_METRICS_PORT}`,
      '    maxconn 10',
      '    timeout client 30s',
      '    http-request use-service prometheus-exporter if { path /metrics }',
      '    http-request deny',
    );

  for (const fe of layout.frontends) {
    const l = fe.listener;
    const table = sourceTableName(l.name);
    // Count admitted connections only: fe_conn also counts the ones being answered busy, so a burst would
    // refuse far below the cap. A one-entry table tracks each connection that passes both checks; its
    // conn_cur drops when the connection ends. (Threads may race check and track by at most nbthread - 1.)
    const admitted = admittedTableName(l.name);
    const overCap = `{ int(0),table_conn_cur(${admitted}),sub(${capVariable(l.name)}) ge 0 }`;
    // Off by one (RECIPES.md): once tracked, the connection counts itself, so N allowed means "gt N".
    const overSource = `{ sc0_conn_cur(${table}) gt ${l.limits.sourceConnections} }`;
    // Edge (spec.edge): new connections per 10 s from one source; the allow list is exempt.
    const allowed = `{ src -f ${layout.allowListPath} }`;
    const rate = plan.spec.edge.connectionRatePerSource[l.service];
    const overRate = rate > 0 ? `{ sc0_conn_rate(${table}) gt ${rate} } !${allowed}` : undefined;
    const pregreetMs = l.service === 'smtp' && l.tls !== 'implicit' ? plan.spec.edge.smtpGreetPauseMs : 0;
    const timeout = fmtSeconds(idleTimeoutSeconds(plan, l.service));
    out.push(
      '',
      `frontend ${l.name}`,
      `    # tenant ${l.tenant}, ${l.protocol} (${l.tls}); cap ${fe.cap}, per source ${l.limits.sourceConnections}`,
      `    bind ${fe.bindHost}:${fe.bindPort}${local ? '' : ' accept-proxy'}`,
      `    maxconn ${fe.maxconn}`,
      `    backlog ${Math.max(BACKLOG_MIN, fe.maxconn)}`,
      `    timeout client ${timeout}`,
      // Session rules run after the NLB's PROXY header is decoded, so src is the real client. A denied
      // network is closed here, before it is counted anywhere.
      `    tcp-request session reject if { src -f ${layout.denyListPath} } !${allowed}`,
      `    tcp-request session track-sc0 src table ${table}`,
    );
    if (l.tls === 'implicit') {
      // A plaintext reply would be garbage inside TLS: the busy-TLS frontend answers inside a handshake.
      // Backend rules run after every tcp-request rule (and after this connection is tracked), so the
      // verdict is taken once, before tracking, into a session variable.
      out.push(
        `    tcp-request session set-var(sess.busy) str(listener) if ${overCap}`,
        `    tcp-request session set-var(sess.busy) str(source) if !{ var(sess.busy) -m found } ${overSource}`,
        ...(overRate ? [`    tcp-request session set-var(sess.busy) str(source) if !{ var(sess.busy) -m found } ${overRate}`] : []),
        `    tcp-request session track-sc1 int(0) table ${admitted} if !{ var(sess.busy) -m found }`,
        `    use_backend ${busyTlsFrontendName(l.service, 'listener')} if { var(sess.busy) -m str listener }`,
        `    use_backend ${busyTlsFrontendName(l.service, 'source')} if { var(sess.busy) -m str source }`,
      );
    } else {
      out.push(
        `    tcp-request content use-service lua.${luaServiceName(l.service, 'listener')} if ${overCap}`,
        `    tcp-request content use-service lua.${luaServiceName(l.service, 'source')} if ${overSource}`,
        ...(overRate ? [`    tcp-request content use-service lua.${luaServiceName(l.service, 'source')} if ${overRate}`] : []),
        `    tcp-request content track-sc1 int(0) table ${admitted}`,
      );
      if (pregreetMs > 0)
        // req.len stays undecided until bytes arrive or the delay ends (HAProxy waits on it): a client that
        // talks first meets the 554 applet; one that waits is passed on, and the daemon greets it.
        out.push(`    tcp-request inspect-delay ${pregreetMs}ms`, `    tcp-request content use-service lua.${PREGREET_SERVICE} if { req.len gt 0 }`);
    }
    out.push(`    default_backend ${fe.backend}`);
    out.push('', `backend ${table}`, `    stick-table type ipv6 size ${SOURCE_TABLE_SIZE} expire ${SOURCE_TABLE_EXPIRE} store conn_cur,conn_rate(10s)`);
    out.push('', `backend ${admitted}`, '    stick-table type integer size 1 store conn_cur');
  }

  // One busy-TLS frontend + backend per family × reason that an implicit-TLS listener needs.
  const busyTls = new Map<string, { service: Service; reason: 'listener' | 'source' }>();
  for (const fe of layout.frontends)
    if (fe.listener.tls === 'implicit')
      for (const reason of ['listener', 'source'] as const) busyTls.set(busyTlsFrontendName(fe.listener.service, reason), { service: fe.listener.service, reason });
  for (const [name, { service, reason }] of busyTls)
    out.push(
      '',
      `frontend ${name}`,
      `    bind abns@${layout.abstractPrefix}${name} ssl crt ${layout.tlsPemPath}`,
      `    maxconn ${BUSY_TLS_MAXCONN}`,
      '    timeout client 10s',
      `    tcp-request content use-service lua.${luaServiceName(service, reason)}`,
      '',
      `backend ${name}`,
      '    timeout server 10s',
      `    server busy abns@${layout.abstractPrefix}${name}`,
    );

  const backends = new Map<string, PlannedListener>();
  for (const fe of layout.frontends) if (!backends.has(fe.backend)) backends.set(fe.backend, fe.listener);
  for (const [name, l] of backends) {
    const timeout = fmtSeconds(idleTimeoutSeconds(plan, l.service));
    out.push(
      '',
      `backend ${name}`,
      '    balance leastconn',
      `    timeout server ${timeout}`,
      // A failed connect is retried on another node (MAIL_BACKEND_REDISPATCH_EVERY). Locally there is one
      // daemon, so the lines change nothing there; they stay for one config shape.
      `    retries ${MAIL_BACKEND_RETRIES}`,
      `    option redispatch ${MAIL_BACKEND_REDISPATCH_EVERY}`,
    );
    if (l.affinity === 'source')
      out.push('    # source affinity: a client keeps its daemon node (Maildir indexes stay warm)', '    stick-table type ipv6 size 200k expire 30m', '    stick on src');
    out.push('    option tcp-check', ...healthCheck(l.protocol, l.tls).map((x) => `    ${x}`));
    // send-proxy-v2 carries the client address and, as destination, the frontend's own port: the daemon
    // maps that port back to the listener. Checks verify no certificate: they only want the greeting.
    const serverOpts = `send-proxy-v2 check${l.tls === 'implicit' ? ' verify none' : ''}`;
    if (local) out.push(`    server mailfleetd 127.0.0.1:${l.localDaemonPort} ${serverOpts}`);
    else
      out.push(
        `    server-template mail 1-${Math.max(1, plan.sizing.mailNodes.max)} ${cloudMailDiscoveryName(plan)}:${l.daemonPort} resolvers vpc init-addr none ${serverOpts}`,
      );
  }
  return out.join('\n') + '\n';
}

/** Lua string literal for printable ASCII only (the hostname is sanitised before). */
const luaString = (s: string) => `"${s.replace(/[^\x20-\x7e]/g, '?').replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/** The busy replies, one Lua TCP applet per protocol family × reason; each writes one line and closes. */
export function renderBusyLua(plan: Plan): string {
  const host = plan.hostname.replace(/[^A-Za-z0-9.-]/g, '') || 'localhost';
  const why = { listener: 'Too many connections to this service', source: 'Too many connections from your address' };
  const reply = (family: 'smtp' | 'imap' | 'pop3', reason: 'listener' | 'source') => {
    const text = `${why[reason]}, try again later`;
    if (family === 'smtp') return `421 4.7.0 ${host} ${text}\r\n`; // RFC 5321 3.8 / RFC 3463 4.7.0
    if (family === 'imap') return `* BYE [UNAVAILABLE] ${text}\r\n`; // RFC 5530
    return `-ERR [SYS/TEMP] ${text}\r\n`; // RFC 3206
  };
  const lines = [
    `-- Rendered by mailfleet for "${plan.platform}": busy replies for connections over a listener or source cap.`,
    '-- Loaded by haproxy.cfg (lua-load); used via "tcp-request content use-service lua.<name>".',
  ];
  // RFC 5321 4.3.2 gives 554 for a refused connection; RFC 3463 5.5.1 (invalid command) for the cause.
  lines.push(
    `core.register_service("${PREGREET_SERVICE}", "tcp", function(applet)`,
    `  applet:send(${luaString(`554 5.5.1 ${host} Protocol error: you talked before the greeting`)} .. "\\r\\n")`,
    'end)',
  );
  for (const family of ['smtp', 'imap', 'pop3'] as const)
    for (const reason of ['listener', 'source'] as const) {
      const text = reply(family, reason).replace(/\r\n$/, '');
      lines.push(
        `core.register_service("mf_busy_${family}_${reason}", "tcp", function(applet)`,
        `  applet:send(${luaString(text)} .. "\\r\\n")`,
        'end)',
      );
    }
  return lines.join('\n') + '\n';
}

export const haproxyRenderer: Renderer = {
  kind: 'haproxy',
  description: 'haproxy.cfg: a frontend per listener with its connection cap, per-source caps, PROXY v2 to the daemons',
  fileName: 'haproxy.cfg',
  render: (plan, opts) => renderHaproxyConfig(plan, opts),
};

export const haproxyBusyRenderer: Renderer = {
  kind: 'haproxy-busy',
  description: 'the Lua applet haproxy.cfg loads to answer over-limit clients with the protocol busy reply',
  fileName: BUSY_LUA_FILE,
  render: (plan) => renderBusyLua(plan),
};
