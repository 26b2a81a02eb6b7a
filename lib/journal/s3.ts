/**
 * Where the journal goes: an S3 bucket, AWS or any S3 API (the local platform and the tests use s3rver,
 * which has no Object Lock: docs/audit.md). The SDK is imported on first use, so a daemon without audit
 * never loads it.
 */
import type { S3Client } from '@aws-sdk/client-s3';

export interface S3Target {
  readonly bucket: string;
  /**
   * Key prefix of every journal object.
   * @default ''
   */
  readonly prefix?: string;
  /** @default - AWS_REGION, else us-east-1 */
  readonly region?: string;
  /** An S3-compatible endpoint (path-style addressing is used with it). @default - AWS S3 */
  readonly endpoint?: string;
  /** @default - the SDK's default chain (instance role on nodes) */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

/** The target from the environment: MAILFLEET_AUDIT_BUCKET (required), MAILFLEET_AUDIT_S3_ENDPOINT, MAILFLEET_AUDIT_PREFIX. */
export function s3TargetFromEnv(env: NodeJS.ProcessEnv = process.env): S3Target | undefined {
  const bucket = env.MAILFLEET_AUDIT_BUCKET;
  if (!bucket) return undefined;
  return {
    bucket,
    ...(env.MAILFLEET_AUDIT_S3_ENDPOINT ? { endpoint: env.MAILFLEET_AUDIT_S3_ENDPOINT } : {}),
    ...(env.MAILFLEET_AUDIT_PREFIX ? { prefix: env.MAILFLEET_AUDIT_PREFIX } : {}),
  };
}

export async function s3Client(t: S3Target): Promise<S3Client> {
  const { S3Client: Client } = await import('@aws-sdk/client-s3');
  return new Client({
    region: t.region ?? process.env.AWS_REGION ?? 'us-east-1',
    ...(t.endpoint ? { endpoint: t.endpoint, forcePathStyle: true } : {}),
    // A copy: the SDK annotates the object it is given.
    ...(t.credentials ? { credentials: { ...t.credentials } } : {}),
    // Retries are the uploader's (it never gives up); one quick SDK retry covers a dropped connection.
    maxAttempts: 2,
  });
}

/** Journal object keys: <prefix>journal/<yyyy>/<mm>/<dd>/<node>/<batch>.{msgs,index.json}. */
export function batchKeys(prefix: string, day: Date, node: string, batch: string): { data: string; index: string } {
  const base = `${prefix}journal/${dayPath(day)}/${safeKeyPart(node)}/${batch}`;
  return { data: `${base}.msgs`, index: `${base}.index.json` };
}

export function dayPath(d: Date): string {
  return `${d.getUTCFullYear()}/${String(d.getUTCMonth() + 1).padStart(2, '0')}/${String(d.getUTCDate()).padStart(2, '0')}`;
}

/** Key characters AWS advises against (backslash, braces, …) become '_'. */
export function safeKeyPart(s: string): string {
  let out = '';
  for (const ch of s) out += (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch === '-' || ch === '.' || ch === '_' ? ch : '_';
  return out;
}
