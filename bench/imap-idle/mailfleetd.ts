/**
 * The mailfleetd side of bench/imap-idle: the real daemon (startDaemon) with every listener on port 0,
 * static users user<i>@example.com, and caps raised so 2,000 sessions fit. Prints "PORT <imap port>".
 * Passwords use cheap scrypt parameters (the hash format carries them) so 2,000 logins measure the
 * sessions, not the KDF. Usage: mailfleetd.ts <dataDir> <users> <password>
 */
import { randomBytes, scryptSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon } from '../../lib/daemon/server.js';
import { silentLogger } from '../../lib/log.js';
import { buildPlan } from '../../lib/plan/build.js';
import { daemonConfig } from '../../lib/plan/daemon-config.js';
import { PROTOCOLS, specSchema } from '../../lib/spec/schema.js';

const [dataDir, users, password] = process.argv.slice(2) as [string, string, string];
const lines = ['users:'];
for (let i = 0; i < Number(users); i++) {
  const salt = randomBytes(16);
  const key = scryptSync(password, salt, 32, { N: 16, r: 1, p: 1 });
  lines.push(`  - address: user${i}@example.com`, `    passwordHash: scrypt$16$1$1$${salt.toString('base64')}$${key.toString('base64')}`);
}
writeFileSync(join(dataDir, 'users.yaml'), lines.join('\n') + '\n');
const big = { listenerConnections: 100_000, sourceConnections: 100_000, portConnections: 100_000, perIp: 100_000, perUser: 100_000, perUserIp: 100_000, perDomain: 100_000, perListener: 100_000 };
const spec = specSchema.parse({
  platform: { name: 'bench', hostname: 'bench.localhost' },
  domains: [{ name: 'example.com' }],
  limits: { imap: big },
  imap: { allowInsecureAuth: true },
});
const config = daemonConfig(buildPlan(spec), { mode: 'local-direct', host: '127.0.0.1', portOverrides: Object.fromEntries(PROTOCOLS.map((p) => [p, 0])), adminPort: 0 });
const daemon = await startDaemon(config, { dataDir, baseDir: dataDir, logger: silentLogger, admin: false });
console.log(`PORT ${daemon.sockets.find((s) => s.protocol === 'imap')!.port}`);

// The bench asks for a full GC before each reading (run with --expose-gc) so the figure is live memory,
// not garbage V8 has not collected yet.
process.on('SIGUSR2', () => (globalThis as { gc?: () => void }).gc?.());
