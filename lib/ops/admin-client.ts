/**
 * The ops CLI's side of the daemon admin API: one client per node (URL + bearer token), JSON in and
 * out, a short timeout so one dead node never stalls `mailfleet top` or `mailfleet limit` for the rest.
 */
import { MailfleetError } from '../errors.js';

export interface DaemonNode {
  /** Admin base URL, e.g. http://10.40.1.12:9025. */
  readonly url: string;
  readonly token?: string;
}

export interface AdminClientOptions {
  /** @default 3000 */
  readonly timeoutMs?: number;
  /** Who makes the change, recorded in the daemon's change log (X-Mailfleet-Actor). */
  readonly actor?: string;
}

export class AdminClient {
  readonly url: string;

  constructor(
    readonly node: DaemonNode,
    private readonly opts: AdminClientOptions = {},
  ) {
    this.url = node.url.replace(/\/+$/, '');
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, body);
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.node.token) headers.Authorization = `Bearer ${this.node.token}`;
    if (this.opts.actor) headers['X-Mailfleet-Actor'] = this.opts.actor;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 3000),
      });
    } catch (e) {
      const err = e as Error & { cause?: { code?: string; message?: string } };
      const why =
        err.name === 'TimeoutError'
          ? `no answer within ${this.opts.timeoutMs ?? 3000} ms`
          : (err.cause?.code ?? err.cause?.message ?? err.message);
      throw new MailfleetError('INTERNAL', `${this.url}: did not answer (${why})`, { cause: e });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      throw new MailfleetError('INTERNAL', `${this.url}${path}: HTTP ${res.status}, not JSON`);
    }
    if (!res.ok) {
      const m = (json as { message?: string }).message ?? text;
      const code = res.status === 400 ? 'BAD_REQUEST' : res.status === 401 ? 'UNAUTHORIZED' : 'INTERNAL';
      throw new MailfleetError(code, `${this.url}: ${m}`, { status: res.status });
    }
    return json as T;
  }
}
