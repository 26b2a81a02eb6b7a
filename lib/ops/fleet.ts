/**
 * Which daemons the ops CLI talks to, and asking all of them at once. Nodes come from --admin flags,
 * else the spec's ops.daemons, else the local daemon of the spec (local.bindAddress:local.ports.admin).
 * The token: --token, else platform.adminToken, else the env var platform.adminTokenEnv names, else the
 * token file the local daemon wrote in its data dir.
 */
import { existsSync, readFileSync } from 'node:fs';
import { userInfo, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { MailfleetError } from '../errors.js';
import { loadSpec } from '../spec/load.js';
import type { Spec } from '../spec/schema.js';
import { AdminClient, type DaemonNode } from './admin-client.js';

/** The file the daemon writes its generated admin token to (lib/admin/server.ts ADMIN_TOKEN_FILE). */
const ADMIN_TOKEN_FILE = 'admin.token';

export interface FleetOptions {
  /** Spec file. @default - none: --admin is then required */
  readonly config?: string;
  /** Admin URLs (repeatable --admin); win over the spec. */
  readonly admin?: readonly string[];
  readonly token?: string;
  /** Data dir of the local platform (token file, local HAProxy). @default - MAILFLEET_DATA_DIR, else the spec's local.dataDir */
  readonly dataDir?: string;
  /** @default 3000 */
  readonly timeoutMs?: number;
}

export interface Fleet {
  readonly nodes: readonly DaemonNode[];
  readonly spec?: Spec;
  readonly dataDir?: string;
  readonly timeoutMs: number;
  /**
   * Who makes changes, sent as X-Mailfleet-Actor and shown as an override's `by`.
   * @default - "mailfleet-cli <OS user>@<host>"
   */
  readonly actor?: string;
}

export function resolveFleet(opts: FleetOptions): Fleet {
  const spec = opts.config ? loadSpec(opts.config).spec : undefined;
  const dataDir =
    opts.dataDir ?? process.env.MAILFLEET_DATA_DIR ?? (spec ? resolve(spec.local.dataDir) : undefined);
  const urls =
    opts.admin && opts.admin.length > 0
      ? [...opts.admin]
      : (spec?.ops?.daemons ?? (spec ? [`http://${spec.local.bindAddress}:${spec.local.ports.admin}`] : []));
  if (urls.length === 0)
    throw new MailfleetError(
      'BAD_REQUEST',
      'no daemons to ask: give --config <spec> (ops.daemons or the local daemon) or --admin <url>',
      { status: 400 },
    );
  for (const u of urls)
    if (!/^https?:\/\/[^\s]+$/.test(u))
      throw new MailfleetError('BAD_REQUEST', `--admin ${u}: expected an http:// or https:// URL`, {
        status: 400,
      });
  const token =
    opts.token ??
    spec?.platform.adminToken ??
    process.env[spec?.platform.adminTokenEnv ?? 'MAILFLEET_ADMIN_TOKEN'] ??
    tokenFile(dataDir);
  return { nodes: urls.map((url) => ({ url, token })), spec, dataDir, timeoutMs: opts.timeoutMs ?? 3000 };
}

function tokenFile(dataDir: string | undefined): string | undefined {
  if (!dataDir) return undefined;
  const f = join(dataDir, ADMIN_TOKEN_FILE);
  return existsSync(f) ? readFileSync(f, 'utf8').trim() : undefined;
}

export type NodeResult<T> =
  | { readonly node: string; readonly ok: true; readonly value: T }
  | { readonly node: string; readonly ok: false; readonly error: string; readonly status?: number };

/** Runs `fn` against every node in parallel; a node that fails is reported, never thrown. */
export async function fanOut<T>(
  fleet: Fleet,
  fn: (c: AdminClient) => Promise<T>,
): Promise<Array<NodeResult<T>>> {
  const actor = fleetActor(fleet);
  return Promise.all(
    fleet.nodes.map(async (n): Promise<NodeResult<T>> => {
      const c = new AdminClient(n, { timeoutMs: fleet.timeoutMs, actor });
      try {
        return { node: c.url, ok: true, value: await fn(c) };
      } catch (e) {
        // The HTTP status tells a refusal (400: the node answered no) from a node that did not answer.
        return { node: c.url, ok: false, error: (e as Error).message, status: (e as { status?: number }).status };
      }
    }),
  );
}

/** Who the fleet's changes are recorded as: --by, else the CLI's OS user and host. */
export function fleetActor(fleet: Pick<Fleet, 'actor'>): string {
  return fleet.actor ?? `mailfleet-cli ${safeUser()}@${hostname()}`;
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
