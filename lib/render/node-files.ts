/**
 * The node-files bundle of one role in one region: every rendered artifact the role's bootstrap needs,
 * gathered from the renderers. Engines upload it (zipped) and store its s3:// URI in the SSM parameter
 * the user data reads, so Terraform and Pulumi ship exactly the files CDK ships.
 */
import { renderEdgeList } from '../haproxy/edge.js';
import { filteringNodeFiles } from '../filter/node-setup.js';
import type { Plan } from '../plan/types.js';
import { EDGE_ALLOW_FILE, EDGE_DENY_FILE } from './haproxy.js';
import { cloudwatchAgentFiles } from './cloudwatch-agent.js';
import { roleScripts, sysctlConf } from './cloud-init.js';
import { glusterFiles } from './gluster.js';
import { renderer } from './index.js';
import type { NodeRole, RegionRole, RenderedFile } from './node-layout.js';
import { slapdFiles } from './slapd.js';
import { drainUnits, haproxyLimits, healthUnits, mailfleetdUnit, mailMountUnit, registerReconcileUnits, registerUnit, slapdUnit } from './systemd.js';

/** What a proxy node gets when the 'haproxy' renderer is not registered yet: its check fails the boot loudly. */
const MISSING_HAPROXY = '# the haproxy renderer is not registered: no configuration to run\nthis line makes haproxy -c fail\n';

export function nodeFiles(plan: Plan, role: NodeRole, region: RegionRole): RenderedFile[] {
  const scripts = roleScripts(plan);
  const common = [scripts.find((f) => f.path === 'bootstrap/common.sh')!, ...cloudwatchAgentFiles(plan, role)];
  switch (role) {
    case 'proxy': {
      const haproxy = renderer('haproxy');
      const busy = renderer('haproxy-busy');
      return [
        ...common,
        scripts.find((f) => f.path === 'bootstrap/proxy.sh')!,
        sysctlConf(),
        haproxyLimits(),
        { path: 'haproxy/haproxy.cfg', content: haproxy ? haproxy.render(plan, { target: 'cloud', region }) : MISSING_HAPROXY },
        // The Lua applet haproxy.cfg loads to answer over-limit clients with the protocol's busy reply.
        ...(busy ? [{ path: `haproxy/${busy.fileName}`, content: busy.render(plan, { target: 'cloud', region }) }] : []),
        // The edge lists haproxy.cfg reads with `src -f` (HAProxy does not start without them).
        { path: `haproxy/${EDGE_DENY_FILE}`, content: renderEdgeList('deny', plan.spec.edge.deny) },
        { path: `haproxy/${EDGE_ALLOW_FILE}`, content: renderEdgeList('allow', plan.spec.edge.allow) },
      ];
    }
    case 'mail': {
      const daemonConfig = renderer('daemon-config')!.render(plan, { target: 'cloud', region });
      return [
        ...common,
        scripts.find((f) => f.path === 'bootstrap/mail.sh')!,
        scripts.find((f) => f.path === 'bootstrap/register.sh')!,
        scripts.find((f) => f.path === 'bootstrap/health.sh')!,
        scripts.find((f) => f.path === 'bootstrap/health-watch.sh')!,
        scripts.find((f) => f.path === 'bootstrap/drain.sh')!,
        sysctlConf(),
        mailMountUnit(plan),
        mailfleetdUnit(plan),
        registerUnit(plan),
        ...registerReconcileUnits(plan),
        ...healthUnits(),
        ...drainUnits(plan),
        { path: 'mailfleetd.json', content: daemonConfig },
        // rspamd (+ ClamAV) on the node when the spec filters there (lib/filter/node-setup.ts).
        ...filteringNodeFiles(plan),
      ];
    }
    case 'storage':
      return [...common, ...glusterFiles(plan, region)];
    case 'ldap':
      return [...common, ...slapdFiles(plan), slapdUnit()];
  }
}

/** True when the proxy bundle carries a real HAProxy configuration. */
export function hasHaproxyRenderer(): boolean {
  return renderer('haproxy') !== undefined;
}
