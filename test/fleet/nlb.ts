/**
 * The NLB stand-in's data path, run inside the fleet's fabric namespace by run.ts: one TCP listener per
 * template listener, forwarding to the proxy target's target-group port with a PROXY v2 header (when the
 * target group has it on), and dropping a flow after the listener's idle timeout (scaled down by the
 * harness) with no byte either way, as NLB does. Usage: node --import tsx nlb.ts <config.json>
 */
import * as fs from 'node:fs';
import * as net from 'node:net';

interface Listener {
  readonly port: number;
  readonly targetPort: number;
  readonly proxyV2: boolean;
  readonly idleSeconds: number;
}
const cfg = JSON.parse(fs.readFileSync(process.argv[2]!, 'utf8')) as { address: string; targets: string[]; listeners: Listener[]; log: string };
const SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

function proxyV2(src: { address: string; port: number }, dst: { address: string; port: number }): Buffer {
  const ip = (a: string) => a.replace(/^::ffff:/, '').split('.').map(Number);
  const b = Buffer.alloc(12);
  Buffer.from([...ip(src.address), ...ip(dst.address)]).copy(b, 0);
  b.writeUInt16BE(src.port, 8);
  b.writeUInt16BE(dst.port, 10);
  return Buffer.concat([SIG, Buffer.from([0x21, 0x11, 0x00, 12]), b]);
}

let pending = cfg.listeners.length;
for (const l of cfg.listeners) {
  net
    .createServer((client) => {
      const target = cfg.targets[0]!;
      const up = net.connect({ host: target, port: l.targetPort });
      let timer: NodeJS.Timeout | undefined;
      const idle = () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          fs.appendFileSync(cfg.log, `${new Date().toISOString()} idle timeout ${l.idleSeconds}s on :${l.port}\n`);
          client.destroy();
          up.destroy();
        }, l.idleSeconds * 1000);
      };
      up.on('connect', () => {
        if (l.proxyV2) up.write(proxyV2({ address: client.remoteAddress!, port: client.remotePort! }, { address: client.localAddress!, port: client.localPort! }));
        idle();
        client.on('data', (d) => {
          idle();
          up.write(d);
        });
        up.on('data', (d) => {
          idle();
          client.write(d);
        });
      });
      const end = () => {
        clearTimeout(timer);
        client.destroy();
        up.destroy();
      };
      client.on('close', end).on('error', end);
      up.on('close', end).on('error', end);
    })
    .listen(l.port, cfg.address, () => {
      if (--pending === 0) process.stdout.write('nlb listening\n');
    });
}
