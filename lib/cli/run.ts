/** Shared CLI plumbing: turn known errors into a clear message and a non-zero exit. */
import { MailfleetError } from '../errors.js';

export async function runAction(fn: () => Promise<void> | void): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof MailfleetError) {
      process.stderr.write(`mailfleet: ${e.message}\n`);
      process.exitCode = e.code === 'SPEC_INVALID' || e.code === 'SPEC_IO' || e.code === 'BAD_REQUEST' ? 2 : 1;
      return;
    }
    throw e;
  }
}
