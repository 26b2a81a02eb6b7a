/**
 * DKIM keys of the local domains: one RSA key per domain and selector, generated on first use into the
 * platform's state dir (`<dataDir>/dkim/<domain>.<selector>.key`, the path rspamd's dkim_signing reads), and
 * the DNS TXT record that publishes its public half (`mailfleet dkim show <domain>`).
 */
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { addressParts } from '../store/maildir/paths.js';

/** Where keys live under a data dir. */
export function dkimKeyDir(dataDir: string): string {
  return join(dataDir, 'dkim');
}

/** The key file of a domain; the domain is checked like a mail domain (it becomes a file name). */
export function dkimKeyPath(keyDir: string, domain: string, selector: string): string {
  const d = addressParts(`postmaster@${domain}`).domain;
  return join(keyDir, `${d}.${selector}.key`);
}

/**
 * The private key (PEM) of a domain, generated (RSA 2048, the size every verifier accepts) when missing.
 * The file is readable by its owner only: rspamd runs as the same user locally.
 */
export function ensureDkimKey(keyDir: string, domain: string, selector: string): string {
  const path = dkimKeyPath(keyDir, domain, selector);
  if (existsSync(path)) return readFileSync(path, 'utf8');
  mkdirSync(keyDir, { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  writeFileSync(path, pem, { mode: 0o600, flag: 'wx' });
  return pem;
}

/** `v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo>` for a private key. */
export function dkimRecordValue(privateKeyPem: string): string {
  const spki = createPublicKey(privateKeyPem).export({ type: 'spki', format: 'der' });
  return `v=DKIM1; k=rsa; p=${spki.toString('base64')}`;
}

/** The record's name: `<selector>._domainkey.<domain>`. */
export function dkimRecordName(domain: string, selector: string): string {
  return `${selector}._domainkey.${domain.toLowerCase()}`;
}

/**
 * The record in zone-file form; the value is split into strings of at most 255 bytes (a TXT string's limit),
 * which verifiers join again.
 */
export function dkimZoneLine(domain: string, selector: string, privateKeyPem: string): string {
  const value = dkimRecordValue(privateKeyPem);
  const parts: string[] = [];
  for (let i = 0; i < value.length; i += 255) parts.push(`"${value.slice(i, i + 255)}"`);
  return `${dkimRecordName(domain, selector)}. IN TXT ( ${parts.join(' ')} )`;
}
