/**
 * What every protocol module and admin route gets from the daemon: settings, backends behind their
 * interfaces, logging, metrics and the live connection registry. Built once per daemon by server.ts.
 */
import type { IDirectory } from '../directory/types.js';
import type { IJournal } from '../journal/types.js';
import type { IAdmission } from '../limits/types.js';
import type { Logger } from '../log.js';
import type { DaemonConfig } from '../plan/types.js';
import type { IMessageDelivery } from '../store/types.js';
import type { SaslMechanisms } from '../auth/sasl.js';
import type { ILoginGate } from './login-gate.js';
import type { DaemonMetrics } from './metrics.js';
import type { AcceptedConnection, BusyWriter } from './net/listener.js';
import type { ConnectionRegistry } from './net/registry.js';

/** Called after a message is durable in a mailbox (IMAP IDLE sessions wake on it). */
export type DeliveredListener = (address: string, folder: string | undefined, name: string) => void;

export interface DaemonContext {
  readonly config: DaemonConfig;
  readonly directory: IDirectory;
  /** Password checks for every service: lockout window, directory, failure delay (login-gate.ts). */
  readonly logins: ILoginGate;
  /** SCRAM-SHA-256, OAUTHBEARER, XOAUTH2 through the same gate (lib/auth/sasl.ts). */
  readonly sasl: SaslMechanisms;
  readonly delivery: IMessageDelivery;
  readonly admission: IAdmission;
  readonly logger: Logger;
  readonly metrics: DaemonMetrics;
  /** Certificate for STARTTLS and implicit TLS (configured, or self-signed under <dataDir>/tls). */
  readonly tls: { readonly key: string; readonly cert: string };
  readonly dataDir: string;
  /** Maildir root: <mailRoot>/<domain>/<localpart>/Maildir (lib/store/maildir/paths.ts). */
  readonly mailRoot: string;
  readonly connections: ConnectionRegistry;
  /** Listeners of successful deliveries; add one to be told about new mail. */
  readonly deliveryListeners: Set<DeliveredListener>;
  /** The audit journal (audit.enabled): every accepted message is committed to it before the 250. */
  readonly journal?: IJournal;
}

/** One wire protocol's session side; registered in lib/daemon/protocols.ts. */
export interface ProtocolModule {
  /** The protocol's "server busy" reply, written before the listener closes a refused connection. */
  readonly busy: BusyWriter;
  /** Starts a session on an admitted connection. Per-daemon state may be cached per ctx (WeakMap). */
  handle(conn: AcceptedConnection, ctx: DaemonContext): void;
  /** Optional: set up per-daemon state when the daemon starts (after its listeners opened). */
  start?(ctx: DaemonContext): void;
  /** Optional: release per-daemon resources when the daemon stops (after listeners have closed). */
  stop?(ctx: DaemonContext): Promise<void>;
}
