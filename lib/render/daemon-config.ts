import { daemonConfig } from '../plan/daemon-config.js';
import { cloudDirectoryUris, regionOf } from './node-layout.js';
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
    const out = uris && cfg.directory.kind === 'ldap' ? { ...cfg, directory: { ...cfg.directory, uris: [...uris] } } : cfg;
    return JSON.stringify(out, null, 2) + '\n';
  },
};
