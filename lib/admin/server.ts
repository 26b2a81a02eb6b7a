/**
 * The admin API: node:http on its own (loopback by default) port, routes from lib/admin/routes.
 * /v1/* needs `Authorization: Bearer <token>`; /healthz and /metrics do not (probes and scrapers).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import { isMailfleetError, MailfleetError } from '../errors.js';
import type { DaemonContext } from '../daemon/context.js';
import type { DaemonConfig } from '../plan/types.js';
import { ADMIN_ROUTES } from './routes/index.js';
import { TextBody, type AdminRequest, type AdminRoute } from './types.js';

/** Largest JSON body a route accepts. */
export const MAX_ADMIN_BODY_BYTES = 1024 * 1024;
export const ADMIN_TOKEN_FILE = 'admin.token';

export interface AdminServerProps {
  readonly ctx: DaemonContext;
  readonly token: string;
  /**
   * Routes to serve.
   * @default ADMIN_ROUTES
   */
  readonly routes?: readonly AdminRoute[];
}

export interface AdminServer {
  readonly port: number;
  readonly host: string;
  close(): Promise<void>;
}

/**
 * The token, in order: config.adminToken, the env var named by config.adminTokenEnv, the token file in
 * dataDir (created with a random token, mode 600, when missing).
 */
export function resolveAdminToken(config: Pick<DaemonConfig, 'adminToken' | 'adminTokenEnv'>, dataDir: string): { token: string; source: string } {
  if (config.adminToken) return { token: config.adminToken, source: 'spec platform.adminToken' };
  const env = process.env[config.adminTokenEnv];
  if (env) return { token: env, source: `env ${config.adminTokenEnv}` };
  const file = join(dataDir, ADMIN_TOKEN_FILE);
  if (existsSync(file)) {
    const t = readFileSync(file, 'utf8').trim();
    if (t.length >= 16) return { token: t, source: file };
  }
  mkdirSync(dataDir, { recursive: true });
  const token = randomBytes(24).toString('base64url');
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return { token, source: file };
}

interface CompiledRoute {
  readonly route: AdminRoute;
  readonly segments: readonly string[];
  readonly auth: boolean;
}

export async function startAdminServer(props: AdminServerProps): Promise<AdminServer> {
  const { ctx } = props;
  const routes: CompiledRoute[] = (props.routes ?? ADMIN_ROUTES).map((route) => ({
    route,
    segments: route.path.split('/').filter(Boolean),
    auth: route.auth ?? route.path.startsWith('/v1/'),
  }));
  const expected = Buffer.from(`Bearer ${props.token}`);
  const log = ctx.logger.child({ component: 'admin' });

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      log.error({ err: e }, 'admin handler crashed');
      if (!res.headersSent) send(res, 500, { error: 'INTERNAL', message: 'internal error' });
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const parts = url.pathname.split('/').filter(Boolean);
    let params: Record<string, string> | undefined;
    let methodMismatch = false;
    let found: CompiledRoute | undefined;
    for (const r of routes) {
      const p = match(r.segments, parts);
      if (!p) continue;
      if (r.route.method !== req.method) {
        methodMismatch = true;
        continue;
      }
      found = r;
      params = p;
      break;
    }
    if (!found || !params) {
      send(res, methodMismatch ? 405 : 404, { error: methodMismatch ? 'METHOD_NOT_ALLOWED' : 'NOT_FOUND', message: `${req.method} ${url.pathname}` });
      return;
    }
    if (found.auth) {
      const got = Buffer.from(req.headers.authorization ?? '');
      if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
        res.setHeader('WWW-Authenticate', 'Bearer');
        send(res, 401, { error: 'UNAUTHORIZED', message: 'admin token required (Authorization: Bearer <token>)' });
        return;
      }
    }
    try {
      const body = await readJson(req);
      const areq: AdminRequest = { method: req.method ?? 'GET', path: url.pathname, params, query: url.searchParams, headers: req.headers, body };
      const out = await found.route.handler(areq, ctx);
      if (out instanceof TextBody) {
        res.writeHead(200, { 'Content-Type': out.contentType });
        res.end(out.text);
      } else send(res, 200, out ?? {});
    } catch (e) {
      if (isMailfleetError(e)) {
        send(res, e.status, { error: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) });
        return;
      }
      throw e;
    }
  }

  const { host, port } = ctx.config.admin;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  server.keepAliveTimeout = 5_000;
  const bound = (server.address() as { port: number }).port;
  return {
    port: bound,
    host,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

function match(pattern: readonly string[], parts: readonly string[]): Record<string, string> | undefined {
  if (pattern.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.startsWith(':')) params[p.slice(1)] = decodeURIComponent(parts[i]!);
    else if (p !== parts[i]) return undefined;
  }
  return params;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  if (req.method === 'GET' || req.method === 'HEAD') return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_ADMIN_BODY_BYTES) throw new MailfleetError('BAD_REQUEST', 'body too large', { status: 413 });
    chunks.push(c);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new MailfleetError('BAD_REQUEST', 'body is not JSON', { status: 400 });
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(`${JSON.stringify(body)}\n`);
}
