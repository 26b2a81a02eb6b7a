/**
 * The shape of one IMAP command: the states it is valid in, its argument schema (parse) and its
 * handler. Each command lives in commands/<name>.ts and is registered in commands/index.ts.
 */
import type { WorkLimits } from './args.js';
import type { Token } from './parser.js';
import type { ImapSession } from './session.js';

export type ImapState = 'not-authenticated' | 'authenticated' | 'selected';

export const ANY_STATE: readonly ImapState[] = ['not-authenticated', 'authenticated', 'selected'];
export const AUTHENTICATED: readonly ImapState[] = ['authenticated', 'selected'];
export const SELECTED: readonly ImapState[] = ['selected'];

/** How the tagged reply ends a command; handlers that reply themselves (LOGOUT) return undefined. */
export interface Completion {
  readonly status?: 'OK' | 'NO';
  readonly code?: string;
  readonly text: string;
}

export interface CommandSpec<A> {
  readonly name: string;
  readonly states: readonly ImapState[];
  /** Argument schema: turns tokens into typed arguments or throws BAD_REQUEST (or LIMIT_EXCEEDED past `limits`). */
  parse(args: readonly Token[], limits: WorkLimits): A;
  handler(session: ImapSession, args: A, tag: string): Promise<Completion | undefined>;
  /**
   * Untagged EXPUNGE may not be sent during FETCH, STORE and SEARCH (RFC 3501 §7.4.1): those set false.
   * @default true
   */
  readonly expungeAfter?: boolean;
  /**
   * Refresh the selected mailbox after the handler and send what changed. SELECT and EXAMINE set false:
   * opening the mailbox has just refreshed it and reported its state (a second refresh costs a round of
   * stats, which on a FUSE volume under delivery load is what made SELECT slow).
   * @default true
   */
  readonly flushAfter?: boolean;
}

/** A command with its argument type erased behind parse → handler, so one Map holds them all. */
export interface RegisteredCommand {
  readonly name: string;
  readonly states: readonly ImapState[];
  readonly expungeAfter: boolean;
  readonly flushAfter: boolean;
  /** Parses (may throw BAD_REQUEST or LIMIT_EXCEEDED) and returns the bound handler. */
  bind(args: readonly Token[], limits: WorkLimits): (session: ImapSession, tag: string) => Promise<Completion | undefined>;
}

export function defineCommand<A>(spec: CommandSpec<A>): RegisteredCommand {
  return {
    name: spec.name,
    states: spec.states,
    expungeAfter: spec.expungeAfter ?? true,
    flushAfter: spec.flushAfter ?? true,
    bind(args, limits) {
      const parsed = spec.parse(args, limits);
      return (session, tag) => spec.handler(session, parsed, tag);
    },
  };
}
