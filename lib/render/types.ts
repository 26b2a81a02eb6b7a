import type { Plan } from '../plan/types.js';

/** A rendered node artifact: a pure function of the plan that returns file text. */
export interface Renderer {
  /** `mailfleet render <kind>` */
  readonly kind: string;
  readonly description: string;
  /** Suggested file name when written with --out. */
  readonly fileName: string;
  render(plan: Plan, opts?: RenderOptions): string;
}

export interface RenderOptions {
  /** Where the artifact is for: the local platform or a cloud node. */
  readonly target?: 'local' | 'cloud';
  /** Region role for cloud artifacts. */
  readonly region?: 'primary' | 'dr';
  /** Runtime directory for sockets/pid files (local HAProxy). */
  readonly runDir?: string;
  /** Node role for per-role artifacts (cloud-init user data): proxy, mail, storage or ldap. */
  readonly role?: string;
}
