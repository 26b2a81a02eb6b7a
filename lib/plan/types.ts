import type { EffectiveRates, EffectiveServiceLimits } from '../spec/defaults.js';
import type { ProxyNumbers } from './proxy.js';
import type { DirectorySpec, Protocol, Service, Spec } from '../spec/schema.js';

export type TlsMode = 'none' | 'starttls' | 'implicit';
export type Affinity = 'source' | 'none';

/** One listener = one tenant × protocol = one load-balancer "virtual server" with its own connection limit. */
export interface PlannedListener {
  /** Stable name: HAProxy frontend name, metric label, `limit set listener:<name>`. */
  readonly name: string;
  /** 'default' for the shared listeners, else the domain that owns dedicated listeners. */
  readonly tenant: string;
  readonly protocol: Protocol;
  readonly service: Service;
  readonly tls: TlsMode;
  /** Port on the NLB and on the HAProxy nodes in the cloud. */
  readonly publicPort: number;
  /** Port clients use on the local platform (HAProxy when present, else the daemon). */
  readonly localPort: number;
  /** Daemon port in the cloud (behind HAProxy, PROXY v2); shared by every listener of the protocol. */
  readonly daemonPort: number;
  /** Daemon port on the local platform when HAProxy fronts it. */
  readonly localDaemonPort: number;
  /** Effective limits of this listener's service for its tenant. */
  readonly limits: EffectiveServiceLimits;
  /** How HAProxy keeps a client on one daemon node. */
  readonly affinity: Affinity;
  /** Index of the NLB that carries this listener. */
  readonly nlbShard: number;
}

export interface NlbShard {
  readonly index: number;
  readonly name: string;
  readonly listeners: readonly string[];
  readonly tenants: readonly string[];
}

/** One socket the daemon opens. */
export interface DaemonSocket {
  readonly protocol: Protocol;
  readonly service: Service;
  readonly host: string;
  readonly port: number;
  readonly tls: TlsMode;
  /** Expect a PROXY v2 header (the socket sits behind HAProxy). */
  readonly proxyProtocol: boolean;
  /** Per-node cap on this port. */
  readonly maxConnections: number;
  /**
   * Which listener a connection belongs to: without PROXY, the fixed listener of this socket;
   * with PROXY, looked up by the header's destination port (the frontend port the client used).
   */
  readonly listener?: string;
  readonly listenerByDestinationPort?: Readonly<Record<number, string>>;
  /** With proxyProtocol: the only networks (CIDRs) a PROXY header is believed from; others are refused. */
  readonly proxyTrustedNetworks?: readonly string[];
}

export interface InventoryLine {
  readonly kind: string;
  readonly count: number;
  readonly why: string;
}

export interface Plan {
  readonly platform: string;
  /**
   * Root of the account-wide names (SSM parameters, secrets, log groups) and the mail tier's name in the
   * private zone, so two instances of one plan coexist; set by withNamePrefix (lib/render/node-layout.ts).
   * @default - `mailfleet/<platform>`
   */
  readonly namePrefix?: string;
  readonly hostname: string;
  readonly domains: readonly string[];
  readonly listeners: readonly PlannedListener[];
  readonly nlbShards: readonly NlbShard[];
  readonly limits: {
    /** Effective limits per service, platform-wide. */
    readonly platform: Readonly<Record<Service, EffectiveServiceLimits>>;
    /** Effective limits per domain and service (only domains with overrides differ). */
    readonly domains: Readonly<Record<string, Readonly<Record<Service, EffectiveServiceLimits>>>>;
    readonly rates: EffectiveRates;
    readonly domainRates: Readonly<Record<string, EffectiveRates>>;
  };
  /** The HAProxy tier's numbers (lib/plan/proxy.ts): what `mailfleet plan` prints and haproxy.cfg carries. */
  readonly proxy: ProxyNumbers;
  readonly sizing: {
    readonly proxyNodes: { min: number; max: number; desired: number; instanceType: string };
    readonly mailNodes: { min: number; max: number; desired: number; instanceType: string };
    readonly storageNodes: number;
  };
  readonly regions: Spec['regions'];
  readonly storage: Spec['storage'];
  readonly directory: DirectorySpec;
  readonly redis: Spec['redis'];
  readonly dr: Spec['dr'];
  readonly inventory: readonly InventoryLine[];
  /** The validated spec the plan came from (renderers read protocol settings from it). */
  readonly spec: Spec;
}

/** How a daemon is run: straight on public local ports, behind local HAProxy, or on a cloud node. */
export type DaemonMode = 'local-direct' | 'local-behind-proxy' | 'cloud';

export interface DaemonConfig {
  readonly mode: DaemonMode;
  /** platform.name: separates platforms that share one Redis. */
  readonly platform: string;
  readonly hostname: string;
  readonly sockets: readonly DaemonSocket[];
  readonly admin: { readonly host: string; readonly port: number };
  readonly listeners: readonly PlannedListener[];
  readonly limits: Plan['limits'];
  readonly smtp: Spec['smtp'];
  readonly maildir: Spec['maildir'];
  readonly auth: Spec['auth'];
  readonly imap: Spec['imap'];
  readonly pop3: Spec['pop3'];
  /** Mailbox quotas (lib/quota); absent in configs rendered before quotas existed: the schema defaults apply. */
  readonly quotas?: Spec['quotas'];
  readonly domains: readonly string[];
  readonly directory: DirectorySpec;
  readonly redis: Spec['redis'];
  /** The spec's audit block, present when audit.enabled: journal every accepted message (lib/journal). */
  readonly audit?: Spec['audit'];
  /** Inbound filtering and DKIM signing through rspamd (lib/filter); undefined: mail is not scanned. */
  readonly filtering?: Spec['filtering'];
  readonly adminTokenEnv: string;
  readonly adminToken?: string;
  /** The spec's ops.daemons: the fleet the operator console of this daemon aggregates. @default - this daemon alone */
  readonly opsDaemons?: readonly string[];
}
