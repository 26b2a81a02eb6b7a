/** Human-readable rendering of a plan for `mailfleet plan`. */
import { SERVICES } from '../spec/schema.js';
import type { Plan } from './types.js';

export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (/^\d+$/.test(c) && i > 0 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.slice(1).map(line)].join('\n');
}

export function formatPlan(plan: Plan): string {
  const out: string[] = [];
  out.push(`platform ${plan.platform}: ${plan.domains.length} domain(s), ${plan.listeners.length} listeners on ${plan.nlbShards.length} NLB(s)`);
  out.push('');
  out.push('Listeners (tenant × protocol; each is a virtual server with its own connection limit)');
  out.push(
    '  cap: HAProxy listener cap per proxy node (proc.cap_<listener>); fe-maxconn: its frontend maxconn (cap + busy headroom);',
    '  daemon-cap: the daemons\' perListener cap, fleet-wide; `limit set listener:<name> N` sets both caps',
  );
  out.push(
    table(
      ['listener', 'tenant', 'proto', 'tls', 'cloud', 'local', 'daemon', 'cap', 'fe-maxconn', 'per-src', 'daemon-cap', 'affinity', 'nlb'],
      plan.listeners.map((l) => [
        l.name,
        l.tenant,
        l.protocol,
        l.tls,
        l.publicPort,
        l.localPort,
        l.daemonPort,
        l.limits.listenerConnections,
        plan.proxy.frontends[l.name]?.maxconn ?? '-',
        l.limits.sourceConnections,
        l.limits.perListener,
        l.affinity,
        l.nlbShard,
      ]),
    ),
  );
  out.push('');
  out.push('Limits per layer (platform; domains override)');
  out.push(
    table(
      ['service', 'listener', 'per-source', 'port/node', 'per-ip', 'per-user', 'user+ip', 'per-domain', 'per-listener'],
      SERVICES.map((s) => {
        const l = plan.limits.platform[s];
        return [s, l.listenerConnections, l.sourceConnections, l.portConnections, l.perIp, l.perUser, l.perUserIp, l.perDomain, l.perListener];
      }),
    ),
  );
  for (const [domain, lim] of Object.entries(plan.limits.domains)) {
    out.push('');
    out.push(`Limits for ${domain}`);
    out.push(
      table(
        ['service', 'listener', 'per-source', 'per-ip', 'per-user', 'user+ip', 'per-domain'],
        SERVICES.map((s) => {
          const l = lim[s];
          return [s, l.listenerConnections, l.sourceConnections, l.perIp, l.perUser, l.perUserIp, l.perDomain];
        }),
      ),
    );
  }
  const r = plan.limits.rates;
  out.push('');
  out.push(
    `SMTP rates: ${r.messagesPerMinutePerIp} msg/min per IP, ${r.messagesPerMinutePerSender} msg/min per sender, ` +
      `${r.messagesPerMinutePerDomain} msg/min per domain, ${r.recipientsPerMessage} rcpt/msg, ${r.recipientsPerHourPerSender} rcpt/h per sender`,
  );
  out.push(
    `HAProxy global maxconn ${plan.proxy.globalMaxConnections} per proxy node (listener caps ${plan.proxy.sumListenerConnections};` +
      ` frontends' maxconn + reserve ${plan.proxy.wantedGlobalMaxConnections}` +
      `${plan.proxy.clampedBy ? `, clamped by ${plan.proxy.clampedBy}` : ''})`,
  );
  const s = plan.sizing;
  out.push(
    `Nodes: proxy ${s.proxyNodes.min}..${s.proxyNodes.max} (${s.proxyNodes.instanceType}), mail ${s.mailNodes.min}..${s.mailNodes.max} desired ${s.mailNodes.desired} (${s.mailNodes.instanceType}), storage ${s.storageNodes}`,
  );
  out.push('');
  out.push('Resources');
  out.push(table(['kind', 'count', 'why'], plan.inventory.map((i) => [i.kind, i.count, i.why])));
  return out.join('\n');
}
