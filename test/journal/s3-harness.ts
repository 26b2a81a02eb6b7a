/** s3rver on 127.0.0.1 port 0 in a temp folder, for the journal tests (lib/journal/local-s3.ts). */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalS3, type LocalS3 } from '../../lib/journal/local-s3.js';

export async function startS3(buckets: readonly string[] = ['audit']): Promise<LocalS3> {
  const dir = await mkdtemp(join(tmpdir(), 'mf-s3-'));
  const s3 = await startLocalS3({ dir, buckets });
  return {
    ...s3,
    async close() {
      await s3.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
