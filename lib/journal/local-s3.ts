/**
 * The archive bucket of the local platform and the tests: s3rver (npm, a development dependency) on
 * loopback, its objects under a folder. It speaks the S3 calls the journal uses (PUT, GET with Range,
 * ListObjectsV2) but has NO Object Lock, versioning, SSE or lifecycle: locally the archive is not
 * tamper-proof (docs/audit.md); those settings are asserted on the CDK, Terraform and Pulumi output.
 */
import { mkdir } from 'node:fs/promises';
import { MailfleetError } from '../errors.js';
import type { S3Target } from './s3.js';

export interface LocalS3 {
  readonly endpoint: string;
  readonly port: number;
  target(bucket: string): S3Target;
  close(): Promise<void>;
}

/** s3rver accepts these (and signs nothing else): the SDK needs some credentials. */
export const LOCAL_S3_CREDENTIALS = Object.freeze({ accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });

export async function startLocalS3(opts: { dir: string; buckets: readonly string[]; host?: string; port?: number }): Promise<LocalS3> {
  let S3rver: typeof import('s3rver').default;
  try {
    S3rver = (await import('s3rver')).default;
  } catch (e) {
    throw new MailfleetError('BAD_REQUEST', 'audit.enabled locally needs the s3rver package (npm install --save-dev s3rver)', { status: 400, cause: e });
  }
  await mkdir(opts.dir, { recursive: true });
  const host = opts.host ?? '127.0.0.1';
  const server = new S3rver({ port: opts.port ?? 0, address: host, silent: true, directory: opts.dir, configureBuckets: opts.buckets.map((name) => ({ name })) });
  const { port } = await server.run();
  const endpoint = `http://${host}:${port}`;
  return {
    endpoint,
    port,
    target: (bucket) => ({ bucket, endpoint, region: 'us-east-1', credentials: LOCAL_S3_CREDENTIALS }),
    close: () => server.close(),
  };
}
