import { daemonConfig } from '../plan/daemon-config.js';
import { cloudDirectoryTls, cloudDirectoryUris, regionOf } from './node-layout.js';
import type { LdapDirectorySpec } from '../spec/schema.js';
import type { Renderer } from './types.js';

/** The JSON settings of one daemon node (`mailfleet serve --daemon-config`). */
export const daemonConfigRenderer: Renderer = {
  kind: 'daemon-config',
  description: 'mailfleetd node settings (JSON) as the plan derives them',
  fileName: 'mailfleetd.json',
  render(plan, opts) {
    const mode = opts?.target === 'local' ? 'local-behind-proxy' : 'cloud';
    const cfg = daemonConfig(plan, { mode });
    // Cloud nodes reach the directory under the names the engines give it (not the spec's placeholders).
    const uris = mode === 'cloud' ? cloudDirectoryUris(plan, regionOf(opts)) : undefined;
    // ... and protect binds as the engines' directory needs (Managed AD: directory.tls, the ldap-ca bundle).
    const tls = mode === 'cloud' ? cloudDirectoryTls(plan) : undefined;
    const out =
      uris && cfg.directory.kind === 'ldap'
        ? { ...cfg, directory: { ...withoutCaFile(cfg.directory), uris: [...uris], ...(tls ? { startTls: tls.startTls, ...(tls.caFile ? { caFile: tls.caFile } : {}) } : {}) } }
        : cfg;
    return JSON.stringify(out, null, 2) + '\n';
  },
};

/** The directory without the spec's caFile: the cloud settings say whether one is used. */
function withoutCaFile(d: LdapDirectorySpec): Omit<LdapDirectorySpec, 'caFile'> {
  const { caFile: _caFile, ...rest } = d;
  return rest;
}
