/**
 * A users file for the benches: scrypt hashes with cheap parameters (the hash carries them), so LOGIN
 * measures the session and not the KDF.
 */
import { randomBytes, scryptSync } from 'node:crypto';

export function cheapUsersYaml(users: readonly string[], password: string): string {
  const lines = ['users:'];
  for (const u of users) {
    const salt = randomBytes(16);
    const key = scryptSync(password, salt, 32, { N: 16, r: 1, p: 1 });
    lines.push(`  - address: ${u}`, `    passwordHash: scrypt$16$1$1$${salt.toString('base64')}$${key.toString('base64')}`);
  }
  return `${lines.join('\n')}\n`;
}
