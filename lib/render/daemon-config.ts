import { daemonConfig } from '../plan/daemon-config.js';
import type { Renderer } from './types.js';

/** The JSON settings of one daemon node (`mailfleet serve --daemon-config`). */
export const daemonConfigRenderer: Renderer = {
  kind: 'daemon-config',
  description: 'mailfleetd node settings (JSON) as the plan derives them',
  fileName: 'mailfleetd.json',
  render(plan, opts) {
    const mode = opts?.target === 'local' ? 'local-behind-proxy' : 'cloud';
    return JSON.stringify(daemonConfig(plan, { mode }), null, 2) + '\n';
  },
};
