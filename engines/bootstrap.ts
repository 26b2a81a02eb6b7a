/**
 * The user data of each node role, taken from the render registry so that every engine boots nodes
 * with the same text. When a 'cloud-init' renderer is registered it owns the whole document; until then
 * the engines wrap whatever role artifacts exist into a minimal cloud-config (and the parity suite's
 * bootstrap-hash check is what tells a mismatch between engines).
 */
import { renderer, type RenderOptions } from '../lib/render/index.js';
import type { Plan } from '../lib/plan/types.js';
import type { RegionRole } from './inventory.js';

export type NodeRole = 'proxy' | 'mail' | 'storage' | 'ldap';

/** Role artifacts written to disk by the fallback cloud-config, in order. */
const ARTIFACTS: Readonly<Record<NodeRole, readonly { kind: string; path: string }[]>> = {
  proxy: [{ kind: 'haproxy', path: '/etc/haproxy/haproxy.cfg' }],
  mail: [
    { kind: 'daemon-config', path: '/etc/mailfleet/mailfleetd.json' },
    { kind: 'systemd', path: '/etc/systemd/system/mailfleetd.service' },
    { kind: 'cloudwatch-agent', path: '/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json' },
  ],
  storage: [{ kind: 'gluster', path: '/etc/mailfleet/gluster-bootstrap.sh' }],
  ldap: [{ kind: 'slapd', path: '/etc/mailfleet/slapd-bootstrap.sh' }],
};

export function bootstrapText(plan: Plan, role: NodeRole, region: RegionRole): string {
  const opts = { target: 'cloud', region, role } as RenderOptions;
  const cloudInit = renderer('cloud-init');
  if (cloudInit) return cloudInit.render(plan, opts);
  const files = ARTIFACTS[role]
    .map((a) => ({ ...a, r: renderer(a.kind) }))
    .filter((a) => a.r !== undefined)
    .map((a) => ({ path: a.path, content: a.r!.render(plan, opts) }));
  const lines = ['#cloud-config', `# mailfleet ${plan.platform} ${region} ${role} node`, 'write_files:'];
  for (const f of files) {
    lines.push(`  - path: ${f.path}`, '    encoding: b64', `    content: ${Buffer.from(f.content).toString('base64')}`);
  }
  if (files.length === 0) lines[2] = 'write_files: []';
  return lines.join('\n') + '\n';
}
