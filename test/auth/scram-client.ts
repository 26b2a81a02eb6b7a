/**
 * A SCRAM-SHA-256 client written from RFC 5802 §3 / RFC 7677, independently of lib/auth/scram.ts (which it
 * tests): it only shares node:crypto. `nonce` may be fixed to replay the RFC 7677 test vector.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

export class ScramClient {
  readonly clientFirstBare: string;
  private serverSignature?: Buffer;

  constructor(
    private readonly user: string,
    private readonly password: string,
    private readonly nonce = randomBytes(18).toString('base64'),
  ) {
    const name = user.replaceAll('=', '=3D').replaceAll(',', '=2C');
    this.clientFirstBare = `n=${name},r=${this.nonce}`;
  }

  /** gs2 header without channel binding and authzid. */
  get clientFirst(): string {
    return `n,,${this.clientFirstBare}`;
  }

  /** The client-final message for a server-first message. */
  clientFinal(serverFirst: string): string {
    const attrs = new Map(serverFirst.split(',').map((kv) => [kv[0]!, kv.slice(2)] as const));
    const r = attrs.get('r')!;
    if (!r.startsWith(this.nonce)) throw new Error('server nonce does not extend ours');
    const salt = Buffer.from(attrs.get('s')!, 'base64');
    const i = Number(attrs.get('i'));
    const saltedPassword = pbkdf2Sync(this.password, salt, i, 32, 'sha256');
    const clientKey = createHmac('sha256', saltedPassword).update('Client Key').digest();
    const storedKey = createHash('sha256').update(clientKey).digest();
    const withoutProof = `c=${Buffer.from('n,,').toString('base64')},r=${r}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const clientSignature = createHmac('sha256', storedKey).update(authMessage).digest();
    const proof = Buffer.from(clientKey.map((b, k) => b ^ clientSignature[k]!));
    const serverKey = createHmac('sha256', saltedPassword).update('Server Key').digest();
    this.serverSignature = createHmac('sha256', serverKey).update(authMessage).digest();
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** True when the server-final message proves the server knew our stored keys. */
  verifyServerFinal(serverFinal: string): boolean {
    return serverFinal === `v=${this.serverSignature!.toString('base64')}`;
  }
}
