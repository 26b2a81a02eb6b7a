/**
 * SCRAM-SHA-256 against RFC 7677's test vector (user "user", password "pencil") and against Dovecot's
 * stored secrets (doveadm pw), with the independent test client (scram-client.ts).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import {
  encodeScramSecret,
  parseClientFirst,
  parseScramSecret,
  scramSecretFromPassword,
  ScramServerExchange,
  verifyPasswordWithScram,
} from '../../lib/auth/scram.js';
import { ScramClient } from './scram-client.js';

// RFC 7677 §3.
const V = {
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

async function vectorExchange(): Promise<ScramServerExchange> {
  const secret = await scramSecretFromPassword('pencil', 4096, Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'));
  const first = parseClientFirst(V.clientFirst);
  assert.ok(!('error' in first));
  return new ScramServerExchange(first, secret, V.serverNonce);
}

describe('SCRAM-SHA-256', () => {
  it('the server side reproduces RFC 7677 server-first and server-final from stored keys', async () => {
    const ex = await vectorExchange();
    assert.equal(ex.serverFirst, V.serverFirst);
    assert.deepEqual(ex.finish(V.clientFinal), { ok: true, serverFinal: V.serverFinal });
  });

  it('the test client reproduces RFC 7677 client-final and accepts its server-final', () => {
    const c = new ScramClient('user', 'pencil', 'rOprNGfwEbeRWgbNEkqO');
    assert.equal(c.clientFirst, V.clientFirst);
    assert.equal(c.clientFinal(V.serverFirst), V.clientFinal);
    assert.equal(c.verifyServerFinal(V.serverFinal), true);
  });

  it('fails a wrong proof, a changed nonce, a changed gs2 header, and refuses channel binding', async () => {
    const proofAt = V.clientFinal.indexOf('p=') + 2;
    const badProof = `${V.clientFinal.slice(0, proofAt)}${Buffer.alloc(32, 1).toString('base64')}`;
    assert.deepEqual((await vectorExchange()).finish(badProof), { ok: false, error: 'invalid-proof' });
    assert.deepEqual((await vectorExchange()).finish(V.clientFinal.replace('k0,p=', 'k1,p=')), { ok: false, error: 'invalid-proof' });
    assert.deepEqual((await vectorExchange()).finish(V.clientFinal.replace('c=biws', 'c=eSws')), { ok: false, error: 'channel-bindings-dont-match' });
    assert.deepEqual(parseClientFirst('p=tls-unique,,n=user,r=abc'), { error: 'channel-binding-not-supported' });
    assert.deepEqual(parseClientFirst('n,,m=ext,n=user,r=abc'), { error: 'extensions-not-supported' });
    assert.deepEqual(parseClientFirst('garbage'), { error: 'invalid-encoding' });
  });

  it('round-trips our secret format; a secret checks a plaintext password too (PLAIN logins)', async () => {
    const s = await scramSecretFromPassword('pencil');
    const again = parseScramSecret(encodeScramSecret(s));
    assert.deepEqual(again, s);
    assert.equal(await verifyPasswordWithScram('pencil', again!), true);
    assert.equal(await verifyPasswordWithScram('pencil!', again!), false);
    assert.equal(parseScramSecret('scram-sha-256$99999999$AAAA$AAAA$AAAA'), undefined);
  });

  it('reads secrets Dovecot wrote (doveadm pw -s SCRAM-SHA-256) and logs in with them', async () => {
    const dovecot = execFileSync('doveadm', ['pw', '-s', 'SCRAM-SHA-256', '-p', 'pencil'], { encoding: 'utf8' }).trim();
    const secret = parseScramSecret(dovecot);
    assert.ok(secret, dovecot);
    assert.equal(await verifyPasswordWithScram('pencil', secret), true);
    assert.equal(await verifyPasswordWithScram('pencil2', secret), false);
    // And a full exchange against Dovecot's stored keys with the independent client.
    const client = new ScramClient('user', 'pencil');
    const first = parseClientFirst(client.clientFirst);
    assert.ok(!('error' in first));
    const server = new ScramServerExchange(first, secret);
    const r = server.finish(client.clientFinal(server.serverFirst));
    assert.ok(r.ok);
    assert.equal(client.verifyServerFinal(r.serverFinal), true);
  });
});
