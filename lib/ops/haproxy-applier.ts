/**
 * `mailfleet limit set listener:<name> N` on HAProxy, and the HAProxy rows of `mailfleet top`.
 *
 * A change never touches a frontend's maxconn at runtime (raising it on a full frontend kills HAProxy
 * 2.6.12, haproxy#2726). Instead:
 *   - within the frontend's headroom (capFitsFrontend): the listener's process variable
 *     is set live (`set var proc.cap_<listener>`), effective for the next connection;
 *   - above it: the config is re-rendered with the new cap (and so a larger maxconn) and HAProxy reloads
 *     through its master socket. The old worker keeps its sessions until they end; the new worker counts
 *     from zero, so until they drain the listener may hold up to old + new connections.
 * Either way the value is recorded first in the listener-limits file, so the next render and deploy keep it.
 */
import { MailfleetError } from '../errors.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { buildPlan } from '../plan/index.js';
import type { Plan } from '../plan/types.js';
import { loadSpec } from '../spec/index.js';
import { capFitsFrontend, haproxyLayout, renderHaproxyConfig } from '../render/haproxy.js';
import { HaproxyRuntime } from '../haproxy/runtime.js';
import { collectHaproxyView, type HaproxyTopRow } from './haproxy-view.js';

export { formatHaproxyTop, type HaproxyTopRow } from './haproxy-view.js';
import { masterReload } from '../haproxy/process.js';
import { applyListenerLimits, clearListenerLimit, readListenerLimits, recordListenerLimit } from '../haproxy/state.js';
import { readLocalHaproxyInfo, writeLocalHaproxyFiles, type LocalHaproxyInfo } from '../platform/haproxy.js';

export interface HaproxyLimitChange {
  readonly listener: string;
  readonly previous?: number;
  readonly cap: number;
  /** 'variable': set live; 'reload': config rewritten and reloaded through the master socket. */
  readonly method: 'variable' | 'reload';
  /** The frontend's maxconn after the change. */
  readonly frontendMaxconn: number;
  readonly recordedIn: string;
}

export interface HaproxyApplierContext {
  readonly info: LocalHaproxyInfo;
  /** @default - built from info.specFile */
  readonly plan?: Plan;
  readonly logger?: Logger;
  /** Who makes the change, recorded beside the cap. @default - not recorded */
  readonly by?: string;
}

/** The running local HAProxy of a data dir, or undefined when none runs there. */
export function findLocalHaproxy(dataDir: string): LocalHaproxyInfo | undefined {
  return readLocalHaproxyInfo(dataDir);
}

function basePlan(ctx: HaproxyApplierContext): Plan {
  if (ctx.plan) return ctx.plan;
  if (!ctx.info.specFile) throw new MailfleetError('BAD_REQUEST', 'the running HAProxy does not say which spec it came from', { status: 400 });
  return buildPlan(loadSpec(ctx.info.specFile).spec);
}

/**
 * `limit set listener:<name> N` on the running HAProxy; `'default'` forgets the recorded value and goes back
 * to the spec's listenerConnections.
 */
export async function setHaproxyListenerLimit(ctx: HaproxyApplierContext, listener: string, value: number | 'default'): Promise<HaproxyLimitChange> {
  const log = ctx.logger ?? silentLogger;
  const recorded = readListenerLimits(ctx.info.limitsFile);
  if (value === 'default') delete recorded[listener];
  const specCap = basePlan(ctx).listeners.find((l) => l.name === listener)?.limits.listenerConnections;
  const cap = value === 'default' ? (specCap ?? NaN) : value;
  if (!Number.isSafeInteger(cap) || cap < 1)
    throw new MailfleetError('BAD_REQUEST', `listener cap must be a positive integer, got ${String(value)}`, { status: 400 });
  const runtime = new HaproxyRuntime(ctx.info.adminSocket);
  const fe = (await runtime.frontends()).find((f) => f.name === listener);
  if (!fe) throw new MailfleetError('NOT_FOUND', `HAProxy has no frontend "${listener}"`, { status: 404 });
  const globalMaxconn = Number((await runtime.info()).Maxconn);
  const previous = await runtime.listenerCap(listener);

  // Validate the whole resulting config before recording anything: a bad value must not poison later renders.
  const plan = applyListenerLimits(basePlan(ctx), value === 'default' ? recorded : { ...recorded, [listener]: cap });
  const renderOpts = { target: 'local' as const, runDir: ctx.info.runDir, maxConnectionsCeiling: ctx.info.maxConnectionsCeiling };
  renderHaproxyConfig(plan, renderOpts);
  if (cap > globalMaxconn)
    throw new MailfleetError('BAD_REQUEST', `listener cap ${cap} exceeds HAProxy global maxconn ${globalMaxconn}`, { status: 400 });

  if (value === 'default') clearListenerLimit(ctx.info.limitsFile, listener);
  else recordListenerLimit(ctx.info.limitsFile, listener, cap, new Date(), ctx.by);
  if (capFitsFrontend(cap, fe.slim)) {
    await runtime.setListenerCap(listener, cap);
    log.info({ listener, previous, cap }, 'haproxy listener cap set live');
    return { listener, previous, cap, method: 'variable', frontendMaxconn: fe.slim, recordedIn: ctx.info.limitsFile };
  }
  writeLocalHaproxyFiles(basePlan(ctx), {
    runDir: ctx.info.runDir,
    limitsFile: ctx.info.limitsFile,
    maxConnectionsCeiling: ctx.info.maxConnectionsCeiling,
  });
  await masterReload({ configFile: ctx.info.configFile, adminSocket: ctx.info.adminSocket, masterSocket: ctx.info.masterSocket });
  const now = await runtime.listenerCap(listener);
  if (now !== cap) throw new MailfleetError('INTERNAL', `after reload ${listener} has cap ${String(now)}, expected ${cap}`);
  const maxconn = haproxyLayout(plan, renderOpts).frontends.find((f) => f.listener.name === listener)!.maxconn;
  log.info({ listener, previous, cap, maxconn }, 'haproxy reloaded with a new listener cap');
  return { listener, previous, cap, method: 'reload', frontendMaxconn: maxconn, recordedIn: ctx.info.limitsFile };
}

/** The frontends alone (the rows `mailfleet top` showed before backends were added). */
export async function haproxyTopRows(info: Pick<LocalHaproxyInfo, 'adminSocket'> & Partial<Pick<LocalHaproxyInfo, 'configFile'>>): Promise<HaproxyTopRow[]> {
  return [...(await collectHaproxyView(info)).frontends];
}

/**
 * The runner the limits CLI calls for `listener:<name>` scopes: applies to the HAProxy running from this
 * data dir, or returns undefined when none runs there (the daemon-side override still applies).
 */
export async function applyListenerLimitToLocalHaproxy(
  dataDir: string,
  listener: string,
  value: number | 'default',
  logger?: Logger,
  by?: string,
): Promise<HaproxyLimitChange | undefined> {
  const info = findLocalHaproxy(dataDir);
  if (!info) return undefined;
  return setHaproxyListenerLimit({ info, logger, by }, listener, value);
}
