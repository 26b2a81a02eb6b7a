/** `mailfleet governor log`: the audit trail as a table, newest last. */
import { table } from '../plan/format.js';
import type { GovernorLogEntry } from './store.js';

export interface FormatLogOptions {
  /** Last N entries. @default 50 */
  readonly rows?: number;
}

export function formatGovernorLog(entries: readonly GovernorLogEntry[], opts: FormatLogOptions = {}): string {
  const shown = entries.slice(-(opts.rows ?? 50));
  if (shown.length === 0) return 'no governor decisions recorded';
  return table(
    ['at', 'mode', 'status', 'action', 'scope', 'before', 'after', 'why / command'],
    shown.map((e) =>
      e.event === 'start'
        ? [e.at, e.mode, 'start', '-', '-', '-', '-', e.resumed && e.resumed.length > 0 ? `resumes ${e.resumed.join(', ')}` : 'nothing governed']
        : [
            e.at,
            e.mode,
            `${e.status ?? '-'}${e.by ? ` by ${e.by}` : ''}`,
            e.decision?.action ?? '-',
            e.decision?.scope ?? '-',
            e.decision?.from ?? '-',
            e.decision?.to ?? '-',
            e.status === 'failed'
              ? `FAILED: ${e.error ?? '?'}`
              : e.status === 'proposed' && e.mode === 'advise' && e.command
                ? `${e.decision?.why ?? ''} → run: ${e.command}`
                : (e.decision?.why ?? ''),
          ],
    ),
  );
}
