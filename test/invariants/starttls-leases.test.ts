/**
 * Regression (issue 15): an SMTP session that upgrades with STARTTLS used to keep its admission leases and
 * its registry entry after QUIT (smtp-server drops every listener of the plain socket when it upgrades, and
 * the listener learnt of the close only through those). Ten STARTTLS submissions by one user and the
 * eleventh was refused with perUser 10.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { PASSWORD, startSmtpHarness, type SmtpHarness } from '../daemon/smtp-harness.js';
import { waitForZero } from './conservation.js';

describe('SMTP STARTTLS sessions release what they took', () => {
  let h: SmtpHarness;
  before(async () => {
    h = await startSmtpHarness({ spec: { limits: { submission: { perUser: 3, perIp: 5 } } } });
  });
  after(() => h.close());

  it('GIVEN perUser 3 and perIp 5 WHEN one user sends 12 STARTTLS submissions in a row THEN every one gets 250 and nothing is left counted', async () => {
    for (let i = 0; i < 12; i++) {
      const t = nodemailer.createTransport({
        host: '127.0.0.1',
        port: h.port('submission'),
        secure: false,
        requireTLS: true,
        tls: { rejectUnauthorized: false },
        auth: { user: 'alice@example.com', pass: PASSWORD },
      });
      const info = await t.sendMail({ from: 'alice@example.com', to: 'bob@example.com', subject: `n${i}`, text: 'hi' });
      assert.match(info.response, /^250 /, `message ${i + 1}`);
      t.close();
    }
    await waitForZero(h.daemon, 2000);
  });
});
