import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { adminPut, configFor, RawClient, startInProcess, tempDir } from '../ops/fixture.js';

async function ehlo(port: number): Promise<RawClient> {
  const c = await RawClient.open(port);
  await c.waitFor(/^220 /);
  await c.send('EHLO client.test', /^250 /);
  return c;
}

test('GIVEN SMTP rates WHEN a client goes over them THEN MAIL/RCPT get 450 4.7.1 naming the rate, recipientsPerMessage 452 4.5.3; exempt clients are not counted', async () => {
  const tmp = await tempDir();
  const d = await startInProcess(
    tmp.dir,
    configFor({
      rates: { messagesPerMinutePerIp: 3, recipientsPerMessage: 2, recipientsPerHourPerSender: 3 },
      smtp: { allowInsecureAuth: true, rateLimitExceptions: [] },
    }),
  );
  const clients: RawClient[] = [];
  after(async () => {
    for (const c of clients) c.close();
    await d.stop();
    await tmp.cleanup();
  });

  // MX: three messages from 127.0.0.1 fit the bucket, the fourth MAIL is deferred.
  const mx = await ehlo(d.port('smtp'));
  clients.push(mx);
  for (let i = 0; i < 3; i++) {
    assert.match(await mx.send('MAIL FROM:<far@remote.test>', /^\d{3} /), /^250 /);
    assert.match(await mx.send('RSET', /^250 /), /^250 /);
  }
  assert.equal(
    await mx.send('MAIL FROM:<far@remote.test>', /^\d{3} /),
    '450 4.7.1 rate limit exceeded: messagesPerMinutePerIp limit of 3 messages per minute reached for 127.0.0.1, try again later',
  );

  // A live raise lets the same client go on at once.
  assert.equal(
    (await adminPut(d.adminUrl, { scope: 'rates.messagesPerMinutePerIp', value: 1000 })).status,
    200,
  );
  const sub = await ehlo(d.port('submission'));
  clients.push(sub);
  const plain = Buffer.from('\0alice@example.com\0password').toString('base64');
  assert.match(await sub.send(`AUTH PLAIN ${plain}`, /^\d{3} /), /^235 /);
  assert.match(await sub.send('MAIL FROM:<alice@example.com>', /^\d{3} /), /^250 /);
  assert.match(await sub.send('RCPT TO:<bob@example.com>', /^\d{3} /), /^250 /);
  assert.match(await sub.send('RCPT TO:<carol@example.org>', /^\d{3} /), /^250 /);
  assert.equal(
    await sub.send('RCPT TO:<alice@example.com>', /^\d{3} /),
    '452 4.5.3 too many recipients: recipientsPerMessage limit of 2',
  );
  assert.match(await sub.send('RSET', /^250 /), /^250 /);
  // Two recipients of the hourly 3 are used; one more, then 450.
  assert.match(await sub.send('MAIL FROM:<alice@example.com>', /^\d{3} /), /^250 /);
  assert.match(await sub.send('RCPT TO:<bob@example.com>', /^\d{3} /), /^250 /);
  assert.equal(
    await sub.send('RCPT TO:<carol@example.org>', /^\d{3} /),
    '450 4.7.1 rate limit exceeded: recipientsPerHourPerSender limit of 3 recipients per hour reached for alice@example.com, try again later',
  );

  const metrics = await (await fetch(`${d.adminUrl}/metrics`)).text();
  assert.match(metrics, /mailfleetd_rate_refused\{rate="messagesPerMinutePerIp"\} 1/);
  assert.match(metrics, /mailfleetd_rate_refused\{rate="recipientsPerHourPerSender"\} 1/);
  assert.match(metrics, /mailfleetd_limit_value\{scope="rates.messagesPerMinutePerIp"\} 1000/);
  // per-listener use and cap come from one snapshot: each gauge reads its own field
  assert.match(metrics, /mailfleetd_limit_scope_current\{kind="listener",service="smtp",id="default-smtp"\} \d+\n/);
  assert.match(metrics, /mailfleetd_limit_scope_limit\{kind="listener",service="smtp",id="default-smtp"\} 2000\n/);
});

test('GIVEN the default exceptions (loopback) THEN a local client is not rate-limited', async () => {
  const tmp = await tempDir();
  const d = await startInProcess(tmp.dir, configFor({ rates: { messagesPerMinutePerIp: 1 } }));
  after(async () => {
    await d.stop();
    await tmp.cleanup();
  });
  const mx = await ehlo(d.port('smtp'));
  for (let i = 0; i < 3; i++) {
    assert.match(await mx.send('MAIL FROM:<far@remote.test>', /^\d{3} /), /^250 /);
    assert.match(await mx.send('RSET', /^250 /), /^250 /);
  }
  mx.close();
});
