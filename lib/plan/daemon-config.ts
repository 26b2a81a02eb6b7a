/**
 * plan → the settings of one daemon process. The daemon takes only this (plus the directory file it names),
 * so a node's behaviour is fully visible in `mailfleet render daemon-config`.
 */
import { PROTOCOLS } from '../spec/schema.js';
import { CLOUD_DAEMON_OFFSET, STANDARD_PORT } from '../spec/ports.js';
import { SERVICE_OF, TLS_OF } from './build.js';
import type { DaemonConfig, DaemonMode, DaemonSocket, Plan } from './types.js';
import { DEFAULT_VPC_CIDR } from '../spec/defaults.js';

export interface DaemonConfigOptions {
  readonly mode: DaemonMode;
  /** Overrides the bind address (default: local.bindAddress locally, 0.0.0.0 in the cloud). */
  readonly host?: string;
  /** Overrides the admin port (default: local.ports.admin; 9025 in the cloud). */
  readonly adminPort?: number;
  /**
   * Replaces every socket port (by protocol) — tests run two daemons on one machine or bind port 0.
   * A value of 0 asks the OS for a free port.
   */
  readonly portOverrides?: Partial<Record<(typeof PROTOCOLS)[number], number>>;
}

export function daemonConfig(plan: Plan, opts: DaemonConfigOptions): DaemonConfig {
  const spec = plan.spec;
  const local = spec.local;
  const host = opts.host ?? (opts.mode === 'cloud' ? '0.0.0.0' : local.bindAddress);
  const sockets: DaemonSocket[] = [];

  if (opts.mode === 'local-direct') {
    // No proxy: the daemon binds every listener's public local port itself.
    for (const l of plan.listeners) {
      sockets.push({
        protocol: l.protocol,
        service: l.service,
        host,
        port: opts.portOverrides?.[l.protocol] !== undefined && l.tenant === 'default' ? opts.portOverrides[l.protocol]! : l.localPort,
        tls: l.tls,
        proxyProtocol: false,
        maxConnections: l.limits.portConnections,
        listener: l.name,
      });
    }
  } else {
    // Behind HAProxy: one socket per protocol; the PROXY v2 destination port says which listener. Only the
    // proxy tier may say who the client is: anyone else who reaches the port could claim any address.
    const trusted = spec.proxy.trustedNetworks ?? (opts.mode === 'cloud' ? vpcCidrs(spec) : LOOPBACK_NETWORKS);
    for (const protocol of PROTOCOLS) {
      const ls = plan.listeners.filter((l) => l.protocol === protocol);
      const port =
        opts.portOverrides?.[protocol] ??
        (opts.mode === 'cloud' ? CLOUD_DAEMON_OFFSET + STANDARD_PORT[protocol] : local.ports[protocol] + local.ports.internalOffset);
      const byDst: Record<number, string> = {};
      for (const l of ls) byDst[opts.mode === 'cloud' ? l.publicPort : l.localPort] = l.name;
      sockets.push({
        protocol,
        service: SERVICE_OF[protocol],
        host,
        port,
        tls: TLS_OF[protocol],
        proxyProtocol: true,
        maxConnections: plan.limits.platform[SERVICE_OF[protocol]].portConnections,
        listener: listenerFallback(ls.map((l) => l.name)),
        listenerByDestinationPort: byDst,
        proxyTrustedNetworks: trusted,
      });
    }
  }
  return {
    mode: opts.mode,
    platform: plan.platform,
    hostname: plan.hostname,
    sockets,
    admin: { host: opts.mode === 'cloud' ? '0.0.0.0' : host, port: opts.adminPort ?? (opts.mode === 'cloud' ? 9025 : local.ports.admin) },
    listeners: plan.listeners,
    limits: plan.limits,
    smtp: spec.smtp,
    maildir: spec.maildir,
    auth: spec.auth,
    imap: spec.imap,
    pop3: spec.pop3,
    quotas: spec.quotas,
    domains: plan.domains,
    directory: plan.directory,
    redis: plan.redis,
    adminTokenEnv: spec.platform.adminTokenEnv,
    adminToken: spec.platform.adminToken,
    ...(spec.ops?.daemons ? { opsDaemons: spec.ops.daemons } : {}),
    ...(spec.audit.enabled ? { audit: spec.audit } : {}),
    ...(spec.filtering ? { filtering: spec.filtering } : {}),
  };
}

/** Where a local proxy tier connects from. */
export const LOOPBACK_NETWORKS: readonly string[] = Object.freeze(['127.0.0.0/8', '::1/128']);

/** The VPCs the proxy tier runs in (each region's, as documented on regions.*.cidr). */
function vpcCidrs(spec: Plan['spec']): string[] {
  const out = [spec.regions?.primary?.cidr ?? DEFAULT_VPC_CIDR.primary];
  if (spec.regions?.dr) out.push(spec.regions.dr.cidr ?? DEFAULT_VPC_CIDR.dr);
  return out;
}

/** The shared listener of the protocol is where unknown destination ports are counted. */
function listenerFallback(names: string[]): string | undefined {
  return names.find((n) => n.startsWith('default-')) ?? names[0];
}
