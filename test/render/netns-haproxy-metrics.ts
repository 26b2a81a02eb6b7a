/**
 * Child of haproxy-metrics.test.ts, run inside a private network namespace (`unshare --net`) so the cloud
 * haproxy.cfg binds every port exactly as rendered. Scrapes the URL the rendered agent scrape config names
 * and prints the body.
 *
 * argv: <spec file> <work dir> <scrape url>
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HaproxyProcess } from '../../lib/haproxy/process.js';
import { runScript } from '../harness/script.js';
import { renderCloudHaproxy } from '../haproxy/cloud-render.js';

const [specFile, dir, url] = process.argv.slice(2) as [string, string, string];

async function main(): Promise<void> {
  const { rendered } = renderCloudHaproxy(specFile, dir);
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, rendered);
  const hx = new HaproxyProcess({ configFile: file, adminSocket: join(dir, 'admin.sock'), masterSocket: join(dir, 'master.sock'), logFile: join(dir, 'haproxy.log') });
  await hx.start();
  try {
    const res = await fetch(url);
    process.stdout.write(`${res.status}\n${await res.text()}`);
  } finally {
    await hx.stop();
  }
}

runScript(main);
