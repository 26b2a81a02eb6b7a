/**
 * Structured logging (pino). Loggers are injected: components take a `Logger` and derive children with
 * connection id, user and transaction id. Tests run silent (MAILFLEET_LOG_LEVEL=silent).
 */
import pino from 'pino';

export type Logger = pino.Logger;

export function createLogger(opts: { level?: string; name?: string } = {}): Logger {
  return pino({
    name: opts.name ?? 'mailfleet',
    level: opts.level ?? process.env.MAILFLEET_LOG_LEVEL ?? 'info',
    base: { pid: process.pid },
  });
}

export const silentLogger: Logger = pino({ level: 'silent' });
