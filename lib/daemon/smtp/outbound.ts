/**
 * The daemon's outbound queue (lib/outbound) when the spec names a relay: its folder under the data dir,
 * relay credentials from the environment, bounces delivered to the sender's local mailbox, outcomes in
 * `mailfleetd_outbound_recipients_total{outcome}`.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { addressParts } from '../../store/maildir/paths.js';
import { OutboundQueue } from '../../outbound/index.js';
import type { DaemonContext } from '../context.js';
import { registryCounter } from '../metrics.js';
import { traceHeaders } from './received.js';

export function createOutbound(ctx: DaemonContext): OutboundQueue | undefined {
  const relay = ctx.config.smtp.relay;
  if (!relay) return undefined;
  const log = ctx.logger.child({ component: 'outbound' });
  const counter = registryCounter(ctx.metrics.registry, 'mailfleetd_outbound_recipients_total', 'Recipients of relayed mail by outcome: relayed, deferred (will retry), bounced', ['outcome']);
  return new OutboundQueue({
    // One folder per node (by host name): a data dir on shared storage must not give two runners one queue.
    dir: join(ctx.dataDir, 'queue', hostname()),
    relay: {
      ...relay,
      username: relay.usernameEnv ? process.env[relay.usernameEnv] : undefined,
      password: relay.passwordEnv ? process.env[relay.passwordEnv] : undefined,
    },
    hostname: ctx.config.hostname,
    logger: log,
    onOutcome: (outcome, n) => counter.inc({ outcome }, n),
    // A bounce goes to the sender's mailbox here; senders of other domains get none (no backscatter).
    onBounce: async (to, message) => {
      const { domain, address } = addressParts(to);
      if (!(await ctx.directory.isLocalDomain(domain))) return log.info({ to }, 'bounce for a non-local sender dropped');
      const users = await ctx.directory.resolveRecipient(address);
      if (users.length === 0) return log.info({ to }, 'bounce for an unknown local sender dropped');
      // A bounce has the null sender (RFC 5321 4.5.5): Return-Path: <>.
      await ctx.delivery.deliver(users.map((u) => ({ address: u.address, headers: traceHeaders('', u.address) })), message);
    },
  });
}
