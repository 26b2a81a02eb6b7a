/**
 * Quota at IMAP (imapflow and raw sessions) and through `mailfleet quota` (the real CLI against the
 * daemon's admin API): APPEND/COPY over quota NO [OVERQUOTA], RFC 9208 GETQUOTAROOT with the same
 * numbers as `quota get`, SETQUOTA refused, `quota list --top`, `quota recalc` repairing drift.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import { measureMaildir, readUsage, USAGE_FILE } from '../../lib/store/usage.js';
import type { UserQuotaStatus } from '../../lib/quota/index.js';
import { RawClient } from '../harness/raw-client.js';
import { PASSWORD, startSmtpHarness, type SmtpHarness } from '../daemon/smtp-harness.js';

const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';

function cli(h: SmtpHarness, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'bin/mailfleet.ts', ...args, '--admin', `http://127.0.0.1:${h.adminPort}`, '--token', h.adminToken], {
      env: { ...process.env, MAILFLEET_LOG_LEVEL: 'silent' },
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`mailfleet ${args.join(' ')} exited ${code}: ${err}${out}`))));
  });
}

async function admin<T>(h: SmtpHarness, method: 'GET' | 'PUT', path: string, body?: unknown): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${h.adminPort}${path}`, {
    method,
    headers: { Authorization: `Bearer ${h.adminToken}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as T;
}

function imapPort(h: SmtpHarness): number {
  return h.daemon.sockets.find((s) => s.protocol === 'imap')!.port;
}

function message(subject: string, bytes: number): string {
  const line = 'y'.repeat(68) + '\r\n';
  return `From: <a@example.com>\r\nSubject: ${subject}\r\n\r\n${line.repeat(Math.max(1, Math.ceil(bytes / line.length)))}`;
}

describe('IMAP quota and mailfleet quota', () => {
  let h: SmtpHarness;
  let c: ImapFlow;
  before(async () => {
    h = await startSmtpHarness({
      spec: { imap: { allowInsecureAuth: true }, quotas: { warnPercents: [], domains: { 'example.com': { total: { storageBytes: 50_000_000, messages: 10_000 }, users: { alice: { storageBytes: 20_000, messages: 50 } } } } } },
    });
    c = new ImapFlow({ host: '127.0.0.1', port: imapPort(h), secure: false, auth: { user: ALICE, pass: PASSWORD }, logger: false, tls: { rejectUnauthorized: false } });
    await c.connect();
  });
  after(async () => {
    await c.logout().catch(() => undefined);
    await h.close();
  });

  it('GIVEN room WHEN APPEND THEN stored; GIVEN no room WHEN APPEND THEN NO [OVERQUOTA] and nothing stored', async () => {
    await c.append('INBOX', message('first', 12_000));
    const before = await readUsage(h.maildir(ALICE));
    assert.equal(before.messages, 1);
    await assert.rejects(c.append('INBOX', message('second', 12_000)), (e: { serverResponseCode?: string }) => e.serverResponseCode === 'OVERQUOTA');
    assert.deepEqual(await readUsage(h.maildir(ALICE)), before);
  });

  it('GIVEN no room WHEN COPY THEN NO [OVERQUOTA]; MOVE (which adds nothing) still works', async () => {
    const raw = await RawClient.open(imapPort(h));
    await raw.readUntil(/^\* OK/, 5000);
    raw.socket.write(`a LOGIN ${ALICE} ${PASSWORD}\r\n`);
    assert.ok(await raw.readUntil(/^a OK/, 5000));
    raw.socket.write('b SELECT INBOX\r\n');
    assert.ok(await raw.readUntil(/^b OK/, 5000));
    raw.socket.write('c COPY 1:* Trash\r\n');
    assert.match((await raw.readUntil(/^c /, 5000))!.lines.at(-1)!, /^c NO \[OVERQUOTA\] /);
    raw.socket.write('d MOVE 1:* Trash\r\n');
    assert.match((await raw.readUntil(/^d /, 5000))!.lines.at(-1)!, /^d OK /);
    raw.close();
    const u = await readUsage(h.maildir(ALICE));
    assert.equal(u.messages, 1);
    assert.deepEqual({ bytes: u.bytes, messages: u.messages }, await measureMaildir(h.maildir(ALICE)));
  });

  it('GIVEN the RFC 9208 capability WHEN GETQUOTAROOT THEN it shows the numbers of `mailfleet quota get`', async () => {
    const caps = [...(c.capabilities?.keys() ?? [])];
    for (const cap of ['QUOTA', 'QUOTA=RES-STORAGE', 'QUOTA=RES-MESSAGE']) assert.ok(caps.includes(cap), `capability ${cap}`);
    // imapflow's typings say messages/used; at run time it returns message/usage (lib/commands/quota.js).
    type Res = { usage: number; limit: number };
    const q = (await c.getQuota('INBOX')) as unknown as { storage?: Res; message?: Res } | false;
    assert.ok(q && q.storage && q.message, JSON.stringify(q));
    const got = JSON.parse(await cli(h, ['quota', 'get', ALICE, '--json'])) as UserQuotaStatus;
    assert.equal(got.usage.messages, 1);
    assert.equal(q.storage.usage, Math.floor(got.usage.bytes / 1024) * 1024);
    assert.equal(q.storage.limit, Math.floor(got.limit.storageBytes / 1024) * 1024);
    assert.equal(q.message.usage, got.usage.messages);
    assert.equal(q.message.limit, got.limit.messages);
    assert.equal(got.limit.storageBytes, 20_000);
    assert.equal(got.source.storageBytes, 'spec-user');
  });

  it('WHEN a client sends SETQUOTA THEN it is NO [NOPERM]; GETQUOTA on an unknown root is NO', async () => {
    const raw = await RawClient.open(imapPort(h));
    await raw.readUntil(/^\* OK/, 5000);
    raw.socket.write(`a LOGIN ${ALICE} ${PASSWORD}\r\n`);
    assert.ok(await raw.readUntil(/^a OK/, 5000));
    raw.socket.write('b SETQUOTA "" (STORAGE 999999)\r\n');
    const r = await raw.readUntil(/^b /, 5000);
    assert.match(r!.lines.at(-1)!, /^b NO \[NOPERM\]/);
    raw.socket.write('c GETQUOTA "nope"\r\n');
    assert.match((await raw.readUntil(/^c /, 5000))!.lines.at(-1)!, /^c NO /);
    raw.socket.write('d GETQUOTA ""\r\n');
    const d = await raw.readUntil(/^d /, 5000);
    assert.ok(d!.lines.some((l) => /^\* QUOTA "" \(STORAGE \d+ 19 MESSAGE 1 50\)$/.test(l)), d!.lines.join('\n'));
    raw.close();
  });

  it('GIVEN a domain total WHEN GETQUOTAROOT THEN the domain is a second quota root, with the numbers of `quota get`; another domain is NO', async () => {
    const raw = await RawClient.open(imapPort(h));
    await raw.readUntil(/^\* OK/, 5000);
    raw.socket.write(`a LOGIN ${ALICE} ${PASSWORD}\r\n`);
    assert.ok(await raw.readUntil(/^a OK/, 5000));
    raw.socket.write('b GETQUOTAROOT INBOX\r\n');
    const b = (await raw.readUntil(/^b /, 5000))!.lines;
    assert.ok(b.includes('* QUOTAROOT "INBOX" "" "example.com"'), b.join('\n'));
    const got = JSON.parse(await cli(h, ['quota', 'get', ALICE, '--json'])) as UserQuotaStatus;
    const domainLine = `* QUOTA "example.com" (STORAGE ${Math.floor(got.domain.usage.bytes / 1024)} ${Math.floor(50_000_000 / 1024)} MESSAGE ${got.domain.usage.messages} 10000)`;
    assert.ok(b.includes(domainLine), `${domainLine} in\n${b.join('\n')}`);
    const own = b.findIndex((l) => l.startsWith('* QUOTA "" '));
    assert.ok(own > b.indexOf(domainLine), 'the user\'s own root comes last, for clients that fold QUOTA responses into one');
    assert.match(b.at(-1)!, /^b OK /);
    raw.socket.write('c GETQUOTA "example.com"\r\n');
    const c2 = (await raw.readUntil(/^c /, 5000))!.lines;
    assert.ok(c2.includes(domainLine), c2.join('\n'));
    raw.socket.write('d GETQUOTA "example.org"\r\n');
    assert.match((await raw.readUntil(/^d /, 5000))!.lines.at(-1)!, /^d NO \[NONEXISTENT\]/);
    raw.close();
  });

  it('GIVEN a live override (PUT /v1/quota, what `quota set` sends) THEN APPEND fits again and `quota get` names the source', async () => {
    await admin(h, 'PUT', `/v1/quota/${ALICE}`, { storageBytes: 1024 * 1024 });
    await c.append('INBOX', message('after-raise', 12_000));
    const got = await admin<UserQuotaStatus>(h, 'GET', `/v1/quota/${ALICE}`);
    assert.equal(got.limit.storageBytes, 1024 * 1024);
    assert.equal(got.source.storageBytes, 'live');
    assert.equal(got.limit.messages, 50); // the other resource stays with the spec
  });

  it('GIVEN drift in the usage file WHEN `quota recalc` THEN usage equals the Maildir again; `quota list --top 1` shows the largest', async () => {
    const t = await import('nodemailer');
    await t.default.createTransport({ host: '127.0.0.1', port: h.port('smtp'), secure: false, ignoreTLS: true }).sendMail({ envelope: { from: 'x@remote.test', to: [BOB] }, raw: message('bob', 100) });
    const truth = await measureMaildir(h.maildir(ALICE));
    await writeFile(join(h.maildir(ALICE), USAGE_FILE), 'MU1 7 3 0\n');
    const drifted = await admin<UserQuotaStatus>(h, 'GET', `/v1/quota/${ALICE}`);
    assert.equal(drifted.usage.bytes, 7);
    const r = JSON.parse(await cli(h, ['quota', 'recalc', ALICE, '--json'])) as { before: { bytes: number }; after: { bytes: number; messages: number } };
    assert.equal(r.before.bytes, 7);
    assert.deepEqual(r.after, truth);
    const fixed = await admin<UserQuotaStatus>(h, 'GET', `/v1/quota/${ALICE}`);
    assert.deepEqual(fixed.usage, truth);
    const list = await admin<{ users: UserQuotaStatus[] }>(h, 'GET', '/v1/quota?top=1');
    assert.deepEqual(
      list.users.map((u) => u.address),
      [ALICE],
    );
    assert.match(await cli(h, ['quota', 'list']), /alice@example\.com[\s\S]*bob@example\.com/);
  });
});
