/**
 * Issue 15, as the user met it: on the local platform (`npm start`, HAProxy in front), 200 STARTTLS
 * submissions in a row by one user all get 250 — before the fix the eleventh was refused (perUser 10) and
 * HAProxy's greeting checks then marked the submission backends DOWN — and one second after the last QUIT
 * `mailfleet top --json` counts no connection anywhere.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { hashPassword } from '../../lib/directory/static.js';
import type { TopReport } from '../../lib/ops/top.js';
import { requireHaproxy, writeTempSpec, type TempSpec } from '../haproxy/harness.js';
import { npmStart, type NpmStart } from './npm-start-harness.js';

const PASSWORD = 'starttls-200-pw';

describe('npm start: 200 STARTTLS submissions by one user', () => {
  let spec: TempSpec;
  let up: NpmStart;
  let dataDir: string;

  before(async () => {
    requireHaproxy();
    spec = await writeTempSpec({ smtp: { allowInsecureAuth: false } }, [{ address: 'alice@example.com', passwordHash: await hashPassword(PASSWORD) }]);
    dataDir = join(spec.dir, 'data');
    up = await npmStart(spec.file, dataDir);
  });
  after(() => {
    up?.kill();
    spec?.cleanup();
  });

  it('GIVEN perUser 10 on submission WHEN alice sends 200 messages over STARTTLS through HAProxy THEN all get 250 and top shows 0 connections a second later', async () => {
    const transport = () =>
      nodemailer.createTransport({
        host: '127.0.0.1',
        port: spec.port('submission'),
        secure: false,
        requireTLS: true,
        tls: { rejectUnauthorized: false },
        auth: { user: 'alice@example.com', pass: PASSWORD },
      });
    for (let i = 0; i < 200; i++) {
      const t = transport();
      const info = await t.sendMail({ from: 'alice@example.com', to: 'alice@example.com', subject: `s${i}`, text: 'hello' });
      assert.match(info.response, /^250 /, `message ${i + 1}`);
      t.close();
    }
    await new Promise((r) => setTimeout(r, 1000));
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'bin/mailfleet.ts', 'top', '--json', '-c', spec.file, '--data-dir', dataDir], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const top = JSON.parse(r.stdout) as TopReport;
    assert.equal(top.total, 0, JSON.stringify(top.sections));
    for (const rows of Object.values(top.sections)) for (const row of rows) assert.equal(row.current, 0, JSON.stringify(row));
  });
});
