/** Options shared by `mailfleet top` and `mailfleet limit`: which daemons, which token. */
import type { Command } from 'commander';
import { resolveFleet, type Fleet } from '../../ops/fleet.js';

export interface FleetCliOptions {
  config?: string;
  admin?: string[];
  token?: string;
  dataDir?: string;
  timeout?: string;
}

export function addFleetOptions(cmd: Command): Command {
  return cmd
    .option(
      '-c, --config <file>',
      'spec file: daemons from ops.daemons, else the local daemon (default examples/local.yaml unless --admin)',
    )
    .option('--admin <url...>', 'daemon admin URL(s), e.g. http://10.0.1.5:9025 (win over the spec)')
    .option(
      '--token <token>',
      'admin token (default: spec platform.adminToken, the env var it names, or <dataDir>/admin.token)',
    )
    .option('--data-dir <dir>', 'local data dir (token file, local HAProxy)')
    .option('--timeout <ms>', 'per-node timeout', '3000');
}

export function fleetFrom(opts: FleetCliOptions): Fleet {
  const config = opts.config ?? (opts.admin && opts.admin.length > 0 ? undefined : 'examples/local.yaml');
  return resolveFleet({
    config,
    admin: opts.admin,
    token: opts.token,
    dataDir: opts.dataDir,
    timeoutMs: Number(opts.timeout ?? 3000),
  });
}
