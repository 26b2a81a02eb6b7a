/**
 * Registry of renderers. Each renderer is a pure function of the plan (lib/render/<kind>.ts) and is listed
 * here once; `mailfleet render <kind>`, the engines and the local platform all read this list.
 */
import type { Renderer } from './types.js';
import { daemonConfigRenderer } from './daemon-config.js';
import { haproxyBusyRenderer, haproxyRenderer } from './haproxy.js';
import { cloudInitRenderer } from './cloud-init.js';
import { systemdRenderer } from './systemd.js';
import { glusterRenderer } from './gluster.js';
import { slapdRenderer } from './slapd.js';
import { cloudwatchAgentRenderer } from './cloudwatch-agent.js';

export const RENDERERS: readonly Renderer[] = [
  daemonConfigRenderer,
  haproxyRenderer,
  haproxyBusyRenderer,
  cloudInitRenderer,
  systemdRenderer,
  glusterRenderer,
  slapdRenderer,
  cloudwatchAgentRenderer,
];

export function renderer(kind: string): Renderer | undefined {
  return RENDERERS.find((r) => r.kind === kind);
}

export type { Renderer, RenderOptions } from './types.js';
