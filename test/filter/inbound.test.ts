/**
 * Filtering through a real rspamd (with ClamAV and a private DNS server, test/harness/rspamd.ts) in front of
 * a real mailfleetd: GTUBE refused or filed to Junk by the recipient domain's policy, EICAR always refused,
 * an SPF -all sender handled as the spec says, Authentication-Results on delivered mail (a forged one from
 * the client removed), and submission mail DKIM-signed on its way out through the relay, verified by
 * mailauth on the receiving side against the published key.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTransport } from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { dkimKeyDir } from '../../lib/filter/dkim.js';
import { runCli } from '../ops/fixture.js';
import { EICAR, GTUBE, filterStackUnavailable, startFilterStack, type FilterStack } from '../harness/rspamd.js';
import { LineClient, PASSWORD, startSmtpHarness, type SmtpHarness } from '../daemon/smtp-harness.js';

const missing = filterStackUnavailable();
if (missing) throw new Error(`filtering tests need rspamd, clamd and dnsmasq (${missing}): scripts/install-system-deps.sh`);

/** One MX transaction on the wire; returns the reply to the final dot. */
async function sendRaw(port: number, from: string, to: readonly string[], body: string): Promise<string> {
  const c = await LineClient.open(port);
  try {
    assert.match(await c.reply(), /^220 /);
    assert.match(await c.cmd('EHLO client.test'), /^250/);
    assert.match(await c.cmd(`MAIL FROM:<${from}>`), /^250/);
    for (const r of to) assert.match(await c.cmd(`RCPT TO:<${r}>`), /^250/);
    assert.match(await c.cmd('DATA'), /^354/);
    return await c.cmd(`${body.replace(/\r?\n/g, '\r\n')}\r\n.`);
  } finally {
    c.close();
  }
}

function message(from: string, to: string, subject: string, text: string, extra = ''): string {
  return `${extra}From: ${from}\nTo: ${to}\nSubject: ${subject}\nMessage-ID: <${Math.random().toString(36).slice(2)}@client.test>\nDate: ${new Date().toUTCString()}\n\n${text}\n`;
}

describe('inbound filtering and DKIM signing through rspamd + ClamAV', { timeout: 120_000 }, () => {
  let stack: FilterStack;
  let h: SmtpHarness;
  let receiver: SMTPServer;
  let keyDir: string;
  const relayed: string[] = [];

  before(async () => {
    // The DNS record is what `mailfleet dkim show` prints (it generates the key rspamd then signs with).
    keyDir = mkdtempSync(join(tmpdir(), 'mf-dkim-'));
    writeFileSync(join(keyDir, 'spec.yaml'), 'platform: { name: dkimtest }\ndomains: [{ name: example.com }]\nfiltering: {}\n');
    const shown = await runCli(['dkim', 'show', 'example.com', '-c', join(keyDir, 'spec.yaml'), '--data-dir', keyDir, '--json']);
    assert.equal(shown.status, 0, shown.stderr);
    const record = JSON.parse(shown.stdout) as { name: string; value: string };
    assert.equal(record.name, 'mailfleet._domainkey.example.com');
    stack = await startFilterStack({
      dkimKeyDir: dkimKeyDir(keyDir),
      records: [
        // SPF that does not allow 127.0.0.1 (-all), and one that does, with DMARC.
        { name: 'spf-fail.test', txt: 'v=spf1 ip4:192.0.2.1 -all' },
        { name: 'good.test', txt: 'v=spf1 ip4:127.0.0.1 -all' },
        { name: '_dmarc.good.test', txt: 'v=DMARC1; p=reject' },
        { name: record.name, txt: record.value },
      ],
    });
    receiver = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onData(stream, _s, cb) {
        const parts: Buffer[] = [];
        stream.on('data', (c: Buffer) => parts.push(c));
        stream.on('end', () => {
          relayed.push(Buffer.concat(parts).toString('latin1'));
          cb();
        });
      },
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const relayPort = (receiver.server.address() as { port: number }).port;
    h = await startSmtpHarness({
      spec: {
        smtp: { allowInsecureAuth: true, authFailureDelayMs: 0, relay: { host: '127.0.0.1', port: relayPort, startTls: 'none', retrySeconds: 1 } },
        filtering: {
          rspamd: { url: stack.url, timeoutMs: 15_000 },
          policy: { spam: 'reject', spfFail: 'reject' },
          domains: { 'example.org': { spam: 'junk', spfFail: 'junk' } },
        },
      },
    });
  });
  after(async () => {
    await h?.close();
    await new Promise<void>((r) => (receiver ? receiver.close(() => r()) : r()));
    await stack?.stop();
    rmSync(keyDir, { recursive: true, force: true });
  });

  const folder = (address: string, name?: string) => {
    const dir = join(h.maildir(address), name ? `.${name}` : '', 'new');
    try {
      return readdirSync(dir).map((n) => readFileSync(join(dir, n), 'latin1'));
    } catch {
      return [];
    }
  };

  it('GTUBE: refused 550 5.7.1 with rspamd\'s reason where the domain says reject, filed to Junk where it says junk', async () => {
    const refused = await sendRaw(h.port('smtp'), 'someone@elsewhere.test', ['bob@example.com'], message('someone@elsewhere.test', 'bob@example.com', 'gtube one', GTUBE));
    assert.match(refused, /^550 5\.7\.1 Gtube pattern/);
    assert.equal(folder('bob@example.com').length, 0);
    const junked = await sendRaw(h.port('smtp'), 'someone@elsewhere.test', ['carol@example.org'], message('someone@elsewhere.test', 'carol@example.org', 'gtube two', GTUBE));
    assert.match(junked, /^250 /);
    assert.equal(folder('carol@example.org').filter((m) => m.includes('gtube two')).length, 0, 'not in INBOX');
    const junk = folder('carol@example.org', 'Junk').filter((m) => m.includes('gtube two'));
    assert.equal(junk.length, 1, 'in the special-use Junk folder');
    assert.match(junk[0]!, /^X-Spam: Yes\r$/m);
  });

  it('EICAR: refused 550 5.7.1 whatever the domain policy (virus found by ClamAV through rspamd)', async () => {
    const r = await sendRaw(h.port('smtp'), 'someone@elsewhere.test', ['carol@example.org'], message('someone@elsewhere.test', 'carol@example.org', 'eicar', EICAR));
    assert.match(r, /^550 5\.7\.1 virus found: Eicar-Test-Signature/);
    assert.equal([...folder('carol@example.org'), ...folder('carol@example.org', 'Junk')].filter((m) => m.includes('Subject: eicar')).length, 0);
  });

  it('an SPF -all sender from 127.0.0.1: refused where spfFail is reject, in Junk where it is junk', async () => {
    const refused = await sendRaw(h.port('smtp'), 'x@spf-fail.test', ['bob@example.com'], message('x@spf-fail.test', 'bob@example.com', 'spf one', 'hello'));
    assert.match(refused, /^550 5\.7\.1 /);
    const junked = await sendRaw(h.port('smtp'), 'x@spf-fail.test', ['carol@example.org'], message('x@spf-fail.test', 'carol@example.org', 'spf two', 'hello'));
    assert.match(junked, /^250 /);
    const junk = folder('carol@example.org', 'Junk').filter((m) => m.includes('spf two'));
    assert.equal(junk.length, 1);
    assert.match(junk[0]!, /spf=fail/);
  });

  it('clean mail lands in INBOX with rspamd\'s Authentication-Results (SPF and DMARC pass); a forged one from the client is gone', async () => {
    const forged = 'Authentication-Results: mx.test; spf=pass smtp.mailfrom=forged@good.test\n';
    const r = await sendRaw(h.port('smtp'), 'news@good.test', ['bob@example.com'], message('news@good.test', 'bob@example.com', 'clean one', 'hello bob', forged));
    assert.match(r, /^250 /);
    const got = folder('bob@example.com').filter((m) => m.includes('clean one'));
    assert.equal(got.length, 1);
    const ar = got[0]!.match(/^Authentication-Results: .*(?:\r\n[ \t].*)*/gm) ?? [];
    assert.equal(ar.length, 1, 'exactly one Authentication-Results: ours');
    assert.match(ar[0]!, /^Authentication-Results: mx\.test;/);
    assert.match(ar[0]!, /spf=pass/);
    assert.match(ar[0]!, /dmarc=pass/);
    assert.doesNotMatch(got[0]!, /forged@good\.test/);
    assert.doesNotMatch(got[0]!, /^X-Spam: Yes/m);
  });

  it('submission mail leaves DKIM-signed (rspamd dkim_signing) and verifies with mailauth against the record `mailfleet dkim show` printed', async () => {
    const t = createTransport({ host: '127.0.0.1', port: h.port('submission'), secure: false, auth: { user: 'alice@example.com', pass: PASSWORD }, tls: { rejectUnauthorized: false } });
    await t.sendMail({ from: 'alice@example.com', to: 'zed@example.net', subject: 'signed on the way out', text: 'hello over there\n' });
    t.close();
    const end = Date.now() + 15_000;
    while (!relayed.some((m) => m.includes('signed on the way out')) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    const raw = relayed.find((m) => m.includes('signed on the way out'));
    assert.ok(raw, 'relayed');
    assert.match(raw, /^DKIM-Signature: .*d=example\.com; s=mailfleet;/m);
    const result = await dkimVerify(Buffer.from(raw, 'latin1'), { resolver: (name: string, rr: string) => stack.resolver.resolve(name, rr) as Promise<never> });
    const statuses = result.results.map((x: { status: { result: string } }) => x.status.result);
    assert.deepEqual(statuses, ['pass'], JSON.stringify(result.results.map((x: { info: string }) => x.info)));
  });
});
