/**
 * Admin API routes: method + path pattern → handler. Handlers get the parsed request and the daemon
 * context and return a value: a `TextBody` is sent as text, anything else as JSON. Errors are thrown as
 * MailfleetError; its `status` becomes the HTTP status.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { DaemonContext } from '../daemon/context.js';

export interface AdminRequest {
  readonly method: string;
  readonly path: string;
  /** `:name` segments of the route pattern. */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  /** Parsed JSON body (undefined when none was sent). */
  readonly body: unknown;
}

export class TextBody {
  constructor(
    readonly text: string,
    readonly contentType = 'text/plain; charset=utf-8',
  ) {}
}

export interface AdminRoute {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** e.g. '/v1/connections' or '/v1/limits/:scope'. */
  readonly path: string;
  /**
   * Whether the bearer token is needed.
   * @default - true for /v1/*, false elsewhere
   */
  readonly auth?: boolean;
  handler(req: AdminRequest, ctx: DaemonContext): Promise<unknown> | unknown;
}
