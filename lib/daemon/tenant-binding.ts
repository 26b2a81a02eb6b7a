/**
 * Tenant binding (DESIGN.md): a dedicated tenant's listener admits only that tenant's domain, and a
 * dedicated tenant's users are refused on the shared listener of a protocol their tenant has its own
 * listener for (they are held to their own listener's caps). Read from the plan's listeners in the daemon
 * config, the same list HAProxy's frontends are rendered from, so the proxy tier and the daemon agree.
 *
 * - Which listener a connection arrived on is conn.listener (the PROXY v2 destination port, or the socket's
 *   own listener). A connection on a listener the plan does not name (tests, ad-hoc sockets) is not bound.
 * - MX (protocol smtp) is not bound: it is unauthenticated and takes mail for every local domain.
 * - A dedicated tenant without a listener for a protocol (domains[].protocols) uses the shared one for it.
 */
import type { DaemonConfig, PlannedListener } from '../plan/types.js';

/** Where a user belongs instead of the listener they used. */
export interface ListenerHint {
  /** The listener that serves the user's domain for this protocol. */
  readonly listener: string;
  readonly host: string;
  readonly port: number;
  /** Reply text: `<domain> is not served on this port: use <host> port <port> (listener <name>)`. */
  readonly text: string;
}

export class TenantBinding {
  private readonly byName = new Map<string, PlannedListener>();
  /** `<tenant>|<protocol>` → listener. */
  private readonly byTenant = new Map<string, PlannedListener>();

  constructor(
    listeners: readonly PlannedListener[],
    /** The host clients are told to use (the platform hostname). */
    private readonly host: string,
    /** Which port of a listener clients dial: publicPort in the cloud, localPort on the local platform. */
    private readonly portOf: (l: PlannedListener) => number,
  ) {
    for (const l of listeners) {
      this.byName.set(l.name, l);
      this.byTenant.set(`${l.tenant.toLowerCase()}|${l.protocol}`, l);
    }
  }

  static fromConfig(config: Pick<DaemonConfig, 'listeners' | 'hostname' | 'mode'>): TenantBinding {
    return new TenantBinding(config.listeners, config.hostname, (l) => (config.mode === 'cloud' ? l.publicPort : l.localPort));
  }

  /** undefined when a user of `domain` may log in on `listener`; else where they belong. */
  check(listener: string | undefined, domain: string): ListenerHint | undefined {
    const here = listener === undefined ? undefined : this.byName.get(listener);
    if (!here || here.protocol === 'smtp') return undefined;
    const d = domain.toLowerCase();
    const own = this.byTenant.get(`${d}|${here.protocol}`) ?? this.byTenant.get(`default|${here.protocol}`);
    if (!own || own.name === here.name) return undefined;
    const port = this.portOf(own);
    return { listener: own.name, host: this.host, port, text: `${d} is not served on this port: use ${this.host} port ${port} (listener ${own.name})` };
  }
}
