/**
 * rspamd's HTTP protocol, as its MTA integrations speak it: `POST /checkv2` on the normal worker with the
 * message as the body and the envelope in request headers (one `Rcpt` line per recipient), answered by a
 * JSON verdict (action, score, symbols, an SMTP message, and the `milter` block of header edits).
 * https://rspamd.com/doc/developers/protocol.html
 */
import { Agent, request } from 'node:http';

/** The envelope and connection facts rspamd checks the message against. */
export interface ScanRequest {
  /** Client address (after PROXY v2: the real client). */
  readonly ip: string;
  readonly helo?: string;
  /** Authenticated user (submission): rspamd then skips inbound checks and may DKIM-sign. */
  readonly user?: string;
  /** MAIL FROM; '' for the null sender. */
  readonly from: string;
  readonly rcpt: readonly string[];
  readonly queueId: string;
  /** Our host name: the authserv-id of the Authentication-Results rspamd writes. */
  readonly mtaName: string;
}

/** Header edits rspamd asks for (its milter_headers module and DKIM signing). */
export interface MilterEdits {
  /** Header name → value, or several values; `order` is the milter insert position (ignored: we prepend). */
  readonly add_headers?: Readonly<
    Record<
      string,
      string | { value: string; order?: number } | ReadonlyArray<string | { value: string; order?: number }>
    >
  >;
  /** Header name → which occurrence goes: 0 all, n the n-th, -n the n-th from the end. */
  readonly remove_headers?: Readonly<Record<string, number>>;
}

/** The part of the checkv2 reply mailfleetd acts on. */
export interface ScanResult {
  /** no action | greylist | add header | rewrite subject | soft reject | reject */
  readonly action: string;
  readonly score: number;
  readonly symbols: Readonly<
    Record<string, { readonly score?: number; readonly options?: readonly string[] }>
  >;
  readonly messages?: { readonly smtp_message?: string };
  readonly milter?: MilterEdits;
  /** The DKIM signature of a signed message, when rspamd did not put it in `milter.add_headers`. */
  readonly 'dkim-signature'?: string | readonly string[];
}

export interface RspamdClientProps {
  /** Base URL of the normal worker, e.g. http://127.0.0.1:11333. */
  readonly url: string;
  /** Longest wait for the whole verdict. */
  readonly timeoutMs: number;
  /**
   * Sockets kept open to rspamd.
   * @default 64
   */
  readonly maxSockets?: number;
}

/** Thrown when rspamd cannot give a verdict (refused, timed out, HTTP error, unreadable reply). */
export class RspamdUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RspamdUnavailableError';
  }
}

export class RspamdClient {
  private readonly agent: Agent;
  private readonly target: URL;

  constructor(private readonly props: RspamdClientProps) {
    this.target = new URL('/checkv2', props.url);
    // Keep-alive: a connection per message would cost a handshake on every DATA.
    this.agent = new Agent({ keepAlive: true, maxSockets: props.maxSockets ?? 64 });
  }

  check(req: ScanRequest, message: Buffer): Promise<ScanResult> {
    const headers: Record<string, string | string[]> = {
      'Content-Length': String(message.length),
      IP: req.ip,
      From: req.from,
      'Queue-Id': req.queueId,
      'MTA-Name': req.mtaName,
    };
    // Node writes an array as one header line per value: rspamd wants one Rcpt line per recipient.
    if (req.rcpt.length > 0) headers.Rcpt = [...req.rcpt];
    if (req.helo) headers.Helo = req.helo;
    if (req.user) headers.User = req.user;
    return new Promise<ScanResult>((resolve, reject) => {
      const fail = (why: string, cause?: unknown) =>
        reject(new RspamdUnavailableError(`rspamd ${this.props.url}: ${why}`, { cause }));
      const r = request(
        this.target,
        { method: 'POST', agent: this.agent, headers, timeout: this.props.timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (e) => fail('reply interrupted', e));
          res.on('end', () => {
            clearTimeout(deadline);
            if (res.statusCode !== 200) return fail(`HTTP ${res.statusCode}`);
            try {
              const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ScanResult;
              if (typeof body.action !== 'string') return fail('reply without an action');
              resolve(body);
            } catch (e) {
              fail('unreadable reply', e);
            }
          });
        },
      );
      // `timeout` is an idle timeout; the deadline bounds the whole exchange.
      const deadline = setTimeout(
        () => r.destroy(new Error(`no verdict within ${this.props.timeoutMs} ms`)),
        this.props.timeoutMs,
      );
      deadline.unref();
      r.on('timeout', () => r.destroy(new Error(`no verdict within ${this.props.timeoutMs} ms`)));
      r.on('error', (e) => {
        clearTimeout(deadline);
        fail(e.message, e);
      });
      r.end(message);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
