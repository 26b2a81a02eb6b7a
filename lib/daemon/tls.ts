/**
 * The daemon's certificate: the configured one, else a self-signed one generated on first start and
 * cached under <dataDir>/tls (so clients that pinned it keep working across restarts).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import selfsigned from 'selfsigned';
import { MailfleetError } from '../errors.js';

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

/** Environment variables naming the PEM files to serve (the cloud bootstrap writes them into mailfleetd.env). */
export const TLS_CERT_ENV = 'MAILFLEET_TLS_CERT';
export const TLS_KEY_ENV = 'MAILFLEET_TLS_KEY';

/**
 * The certificate named by MAILFLEET_TLS_CERT / MAILFLEET_TLS_KEY, or undefined when neither is set
 * (the daemon then uses its cached self-signed one). Fails when only one is set or a file is unreadable:
 * a node that was given a certificate must not silently serve a self-signed one.
 */
export function certificateFromEnv(env: NodeJS.ProcessEnv = process.env): TlsMaterial | undefined {
  const certFile = env[TLS_CERT_ENV];
  const keyFile = env[TLS_KEY_ENV];
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) throw new MailfleetError('SPEC_INVALID', `set both ${TLS_CERT_ENV} and ${TLS_KEY_ENV}, or neither`, { status: 400 });
  const read = (file: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (e) {
      throw new MailfleetError('SPEC_IO', `cannot read TLS file ${file}: ${(e as Error).message}`, { status: 400, cause: e });
    }
  };
  return { cert: read(certFile), key: read(keyFile) };
}
