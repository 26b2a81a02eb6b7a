/**
 * The daemon's certificate: the configured one, else a self-signed one generated on first start and
 * cached under <dataDir>/tls (so clients that pinned it keep working across restarts).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import selfsigned from 'selfsigned';

export interface TlsMaterial {
  readonly key: string;
  readonly cert: string;
}

/** Validity of generated certificates. */
export const SELF_SIGNED_DAYS = 825;

export function loadOrCreateCertificate(dataDir: string, hostname: string): TlsMaterial & { generated: boolean; dir: string } {
  const dir = join(dataDir, 'tls');
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  if (existsSync(keyFile) && existsSync(certFile)) {
    return { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8'), generated: false, dir };
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pems = selfsigned.generate([{ name: 'commonName', value: hostname }], {
    days: SELF_SIGNED_DAYS,
    keySize: 2048,
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'subjectAltName', altNames: [{ type: 2, value: hostname }, { type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] },
    ],
  });
  writeFileSync(keyFile, pems.private, { mode: 0o600 });
  writeFileSync(certFile, pems.cert, { mode: 0o644 });
  return { key: pems.private, cert: pems.cert, generated: true, dir };
}
