/**
 * What every engine sets on the NLBs in front of the HAProxy tier, derived from the plan so that CDK,
 * Terraform and Pulumi (and the fleet harness's NLB stand-in) agree.
 */
import { SERVICE_OF } from '../plan/build.js';
import type { Plan } from '../plan/types.js';
import type { Protocol } from '../spec/schema.js';
import { CLOUD_HEALTH_PORT, idleTimeoutSeconds } from './haproxy.js';

/** AWS bounds of a TCP listener's `tcp.idle_timeout.seconds` (the default, 350 s, is what cut IMAP IDLE). */
export const NLB_TCP_IDLE_MIN = 60;
export const NLB_TCP_IDLE_MAX = 6000;
/** Seconds the NLB keeps a silent flow beyond HAProxy's own idle timeout, so HAProxy (and the daemon) close first, with a reply. */
export const NLB_IDLE_MARGIN_SECONDS = 60;

/**
 * A TCP listener's idle timeout: above HAProxy's client timeout for the protocol (which is above the
 * daemon's autologout, e.g. IMAP's 30 min), within what NLB accepts.
 */
export function nlbIdleTimeoutSeconds(plan: Plan, protocol: Protocol): number {
  const s = idleTimeoutSeconds(plan, SERVICE_OF[protocol]) + NLB_IDLE_MARGIN_SECONDS;
  return Math.min(NLB_TCP_IDLE_MAX, Math.max(NLB_TCP_IDLE_MIN, s));
}

/**
 * Target-group health check of every HAProxy target group: HTTP GET /healthz on the health frontend
 * (which accepts the PROXY v2 header NLB puts on health checks, and fails while no mail node is up).
 */
export const NLB_HEALTH_CHECK = {
  protocol: 'HTTP',
  port: CLOUD_HEALTH_PORT,
  path: '/healthz',
  intervalSeconds: 10,
  healthyThreshold: 2,
  unhealthyThreshold: 2,
} as const;

/** NLB_HEALTH_CHECK in the shape of Terraform's and Pulumi's `health_check` block (the same field names). */
export const NLB_HEALTH_CHECK_TF = {
  protocol: NLB_HEALTH_CHECK.protocol,
  port: String(NLB_HEALTH_CHECK.port),
  path: NLB_HEALTH_CHECK.path,
  interval: NLB_HEALTH_CHECK.intervalSeconds,
  healthyThreshold: NLB_HEALTH_CHECK.healthyThreshold,
  unhealthyThreshold: NLB_HEALTH_CHECK.unhealthyThreshold,
};
