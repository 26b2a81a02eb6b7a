/**
 * The command registry: one typed Map from command name (as the parser reports it, `UID FETCH` for
 * UID variants) to its states, argument schema and handler. The session looks commands up here only.
 */
import type { RegisteredCommand } from '../command.js';
import { append } from './append.js';
import { authenticate } from './authenticate.js';
import { capability } from './capability.js';
import { check } from './check.js';
import { close } from './close.js';
import { compress } from './compress.js';
import { copy, uidCopy } from './copy.js';
import { create } from './create.js';
import { del } from './delete.js';
import { enable } from './enable.js';
import { examine } from './examine.js';
import { expunge, uidExpunge } from './expunge.js';
import { fetch, uidFetch } from './fetch.js';
import { getquota } from './getquota.js';
import { getquotaroot } from './getquotaroot.js';
import { id } from './id.js';
import { idle } from './idle.js';
import { list } from './list.js';
import { login } from './login.js';
import { logout } from './logout.js';
import { lsub } from './lsub.js';
import { move, uidMove } from './move.js';
import { namespace } from './namespace.js';
import { noop } from './noop.js';
import { rename } from './rename.js';
import { search, uidSearch } from './search.js';
import { select } from './select.js';
import { setquota } from './setquota.js';
import { sort, uidSort } from './sort.js';
import { starttls } from './starttls.js';
import { status } from './status.js';
import { store, uidStore } from './store.js';
import { subscribe } from './subscribe.js';
import { thread, uidThread } from './thread.js';
import { unselect } from './unselect.js';
import { unsubscribe } from './unsubscribe.js';

const ALL: readonly RegisteredCommand[] = [
  append, authenticate, capability, check, close, copy, uidCopy, create, del, enable, examine, expunge, uidExpunge,
  fetch, uidFetch, id, idle, list, login, logout, lsub, move, uidMove, namespace, noop, rename, search, uidSearch,
  select, starttls, status, store, uidStore, subscribe, unselect, unsubscribe,
  getquota, getquotaroot, setquota,
  sort, uidSort, thread, uidThread,
  compress,
];

export const COMMANDS: ReadonlyMap<string, RegisteredCommand> = new Map(ALL.map((c) => [c.name, c]));
