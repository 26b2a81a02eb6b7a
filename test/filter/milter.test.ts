/**
 * rspamd's proxy worker in milter mode, as the harness (and bench/smtp-filter) runs it for Postfix: a real
 * Postfix with smtpd_milters pointing at it refuses GTUBE and EICAR and takes ham. The proxy scans in its
 * own process (there is no normal worker on rspamd's stock 127.0.0.1:11333 to forward to).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startPostfix, type RunningPostfix } from '../../bench/lib/postfix.js';
import { LineClient } from '../daemon/smtp-harness.js';
import { EICAR, GTUBE, filterStackUnavailable, startFilterStack, type FilterStack } from '../harness/rspamd.js';

const missing = filterStackUnavailable();
if (missing) throw new Error(`filtering tests need rspamd, clamd and dnsmasq (${missing}): scripts/install-system-deps.sh`);

describe('rspamd milter worker behind a real Postfix', { timeout: 120_000 }, () => {
  let stack: FilterStack;
  let pf: RunningPostfix;
  let work: string;
  before(async () => {
    stack = await startFilterStack({ milter: true });
    work = mkdtempSync(join(tmpdir(), 'mf-milter-'));
    pf = await startPostfix({ dir: join(work, 'postfix'), extraMain: [`smtpd_milters = inet:${stack.milter!}`, 'milter_default_action = tempfail'] });
  });
  after(async () => {
    pf?.stop();
    await stack?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  async function send(body: string): Promise<string> {
    let c: LineClient | undefined;
    for (let i = 0; i < 50 && !c; i++) c = await LineClient.open(pf.port).catch(async () => void (await new Promise((r) => setTimeout(r, 100))));
    try {
      assert.match(await c!.reply(), /^220 /);
      assert.match(await c!.cmd('EHLO client.test'), /^250/);
      assert.match(await c!.cmd('MAIL FROM:<someone@elsewhere.test>'), /^250/);
      assert.match(await c!.cmd('RCPT TO:<bob@example.com>'), /^250/);
      assert.match(await c!.cmd('DATA'), /^354/);
      c!.socket.write(`From: someone@elsewhere.test\r\nTo: bob@example.com\r\nSubject: t\r\n\r\n${body}\r\n.\r\n`);
      // A generous wait: the scan runs on a loaded machine.
      return await c!.reply(20_000);
    } finally {
      c?.close();
    }
  }

  it('GTUBE and EICAR refused with 5xx at the end of DATA, ham queued', async () => {
    const log = () => readFileSync(pf.logFile, 'utf8').split('\n').slice(-5).join('\n');
    assert.match(await send(GTUBE), /^5\d\d /, log());
    assert.match(await send(EICAR), /^5\d\d /, log());
    assert.match(await send('hello bob, see you on Tuesday'), /^250 /, log());
  });
});
