/**
 * The read side of the message store for IMAP and POP3: a user's folders, and one shared Mailbox per
 * folder per process (so 2,000 sessions on one INBOX hold one index, not 2,000), with change watchers
 * fed by delivery events and by a poll for changes made on other nodes.
 */
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MailfleetError } from '../../errors.js';
import { storeError } from '../maildir/deliver.js';
import { addUsage } from '../usage.js';
import type { IMailboxEvents } from './events.js';
import { createMaildirFolder, Mailbox } from './mailbox.js';
import type { MimeLimits } from './mime.js';
import { checkName, DELIMITER, folderDir, nameFromEntry, nameToWire } from './names.js';
import { nextUidValidity } from './uidvalidity.js';

/** Special-use folders (RFC 6154) every user gets at first login. */
export const SPECIAL_USE: Readonly<Record<string, string>> = Object.freeze({
  Drafts: '\\Drafts',
  Sent: '\\Sent',
  Trash: '\\Trash',
  Junk: '\\Junk',
});

const SUBSCRIPTIONS_FILE = 'subscriptions';
let tmpCounter = 0;

export interface MailStoreProps {
  /** The Maildir directory of a user (holds cur/ new/ tmp/ and the .Folder directories). */
  readonly maildirOf: (address: string) => string;
  readonly events: IMailboxEvents;
  /**
   * How often a watched mailbox is rescanned for changes made on other nodes.
   * @default 10000
   */
  readonly pollIntervalMs?: number;
  /**
   * MIME structure worth parsing per message (imap.maxMimeParts, maxMimeDepth, maxHeaderBytes).
   * @default DEFAULT_MIME_LIMITS
   */
  readonly mimeLimits?: MimeLimits;
  /**
   * Expunged UIDs per folder kept with their modseq for QRESYNC (imap.expungeHistoryUids).
   * @default DEFAULT_EXPUNGE_HISTORY_UIDS (10,000)
   */
  readonly expungeHistoryUids?: number;
  /**
   * Bytes each folder's change log may reach before a change rewrites the UID list (imap.changeLogBytes);
   * 0 keeps no log.
   * @default DEFAULT_CHANGE_LOG_BYTES (64 KiB)
   */
  readonly changeLogBytes?: number;
  /**
   * Milliseconds a folder's lock is kept after a locked pass for the next one of this process
   * (imap.folderLockHoldMs); 0 releases it after every pass.
   * @default DEFAULT_FOLDER_LOCK_HOLD_MS (20)
   */
  readonly lockHoldMs?: number;
  /**
   * Folders no session holds any more are kept this many at most (least recently used go first), so
   * the next session (short IMAP sessions, POP3 checks) skips re-reading the UID list and cur/.
   * @default 200
   */
  readonly keepClosedMailboxes?: number;
  /**
   * How long a folder no session holds stays kept.
   * @default 300000
   */
  readonly keepClosedMailboxMs?: number;
}

export interface FolderInfo {
  readonly name: string;
  readonly specialUse?: string;
  readonly hasChildren: boolean;
  /**
   * Not a folder, only the superior name of one (its parent was deleted, or the folders came from
   * Dovecot, whose CREATE makes no parents): LIST shows it \Noselect (RFC 3501 §6.3.8).
   */
  readonly noselect?: boolean;
}

interface Entry {
  readonly mailbox: Mailbox;
  readonly address: string;
  refs: number;
  readonly watchers: Set<() => void>;
  unsubscribe?: () => void;
  timer?: NodeJS.Timeout;
}

/** A session's reference to a shared Mailbox; release() when the session leaves it. */
export interface MailboxHandle {
  readonly mailbox: Mailbox;
  /** Calls `listener` after the mailbox changed (delivery, other sessions, other nodes). */
  watch(listener: () => void): () => void;
  /** Tells the other watchers that this session changed the mailbox. */
  changed(): void;
  release(): void;
}

export class MailStore {
  private readonly open = new Map<string, Entry>();
  private readonly ensured = new Map<string, Promise<void>>();
  /** Released folders by directory, oldest first (a Map keeps insertion order). */
  private readonly closed = new Map<string, { readonly mailbox: Mailbox; readonly at: number }>();
  private readonly pollIntervalMs: number;
  private readonly keepClosed: number;
  private readonly keepClosedMs: number;

  constructor(private readonly props: MailStoreProps) {
    this.pollIntervalMs = props.pollIntervalMs ?? 10_000;
    this.keepClosed = props.keepClosedMailboxes ?? 200;
    this.keepClosedMs = props.keepClosedMailboxMs ?? 300_000;
  }

  maildir(address: string): string {
    return this.props.maildirOf(address);
  }

  /** Creates the user's Maildir and the special-use folders if missing (first login). */
  async ensureUser(address: string): Promise<void> {
    // Once per user per process: later logins skip the stats (a deleted Sent is not recreated until restart).
    let p = this.ensured.get(address);
    if (!p) {
      p = this.createDefaults(address);
      this.ensured.set(address, p);
      p.catch(() => this.ensured.delete(address));
    }
    return p;
  }

  private async createDefaults(address: string): Promise<void> {
    const root = this.maildir(address);
    await createMaildirFolder(root);
    let created = false;
    for (const name of Object.keys(SPECIAL_USE)) {
      const dir = folderDir(root, name);
      if (await exists(join(dir, 'cur'))) continue;
      await createMaildirFolder(dir);
      created = true;
    }
    if (created) {
      const subs = await this.subscriptions(address);
      for (const n of Object.keys(SPECIAL_USE)) subs.add(n);
      await this.writeSubscriptions(address, subs);
    }
  }

  /** Every folder of the user, INBOX first, with the superior names of folders that have no folder. */
  async list(address: string): Promise<FolderInfo[]> {
    const root = this.maildir(address);
    const names = new Set(['INBOX']);
    for (const e of await readdir(root, { withFileTypes: true }).catch(() => [])) {
      if (!e.isDirectory()) continue;
      const n = nameFromEntry(e.name);
      if (n !== undefined) names.add(n);
    }
    const parents = new Set<string>();
    for (const n of names) for (const p of superiorNames(n)) if (!names.has(p)) parents.add(p);
    const all = [...names, ...parents];
    const withChildren = new Set<string>();
    for (const n of all) for (const p of superiorNames(n)) withChildren.add(p);
    const rest = all.filter((n) => n !== 'INBOX').sort();
    return ['INBOX', ...rest].map((name) => ({
      name,
      specialUse: SPECIAL_USE[name],
      hasChildren: withChildren.has(name),
      ...(parents.has(name) ? { noselect: true } : {}),
    }));
  }

  async exists(address: string, name: string): Promise<boolean> {
    return exists(join(folderDir(this.maildir(address), checkName(name)), 'cur'));
  }

  /** Creates a folder and the superior names it needs (RFC 3501 §6.3.3 SHOULD: `Work.Projects` makes `Work`). */
  async create(address: string, name: string): Promise<void> {
    const n = checkName(name);
    if (n === 'INBOX' || (await this.exists(address, n))) throw new MailfleetError('MAILBOX_EXISTS', `mailbox already exists: ${n}`);
    await this.createParents(address, n);
    await createMaildirFolder(folderDir(this.maildir(address), n));
  }

  private async createParents(address: string, n: string): Promise<void> {
    for (const p of superiorNames(n)) if (p !== 'INBOX' && !(await this.exists(address, p))) await createMaildirFolder(folderDir(this.maildir(address), p));
  }

  async delete(address: string, name: string): Promise<void> {
    const n = checkName(name);
    if (n === 'INBOX') throw new MailfleetError('MAILBOX_INVALID_NAME', 'INBOX cannot be deleted');
    if (!(await this.exists(address, n))) throw new MailfleetError('MAILBOX_NOT_FOUND', `no such mailbox: ${n}`);
    const dir = folderDir(this.maildir(address), n);
    await this.releaseLocks(dir);
    this.forgetClosed(dir);
    // Its messages leave the user's usage: the folder's index says how much (new/ adopted first).
    const gone = new Mailbox({ name: n, dir, lockHoldMs: 0 });
    await gone.refresh().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    const bytes = gone.messages.reduce((x, r) => x + r.size, 0);
    if (gone.messages.length > 0) await addUsage(this.maildir(address), { bytes: -bytes, messages: -gone.messages.length }).catch(() => undefined);
  }

  /** Renames a folder and its children. Renaming INBOX moves its messages into the new folder. */
  async rename(address: string, from: string, to: string): Promise<void> {
    const a = checkName(from);
    const b = checkName(to);
    const root = this.maildir(address);
    if (!(await this.exists(address, a))) throw new MailfleetError('MAILBOX_NOT_FOUND', `no such mailbox: ${a}`);
    if (b === 'INBOX' || (await this.exists(address, b))) throw new MailfleetError('MAILBOX_EXISTS', `mailbox already exists: ${b}`);
    await this.releaseLocks(folderDir(root, a));
    this.forgetClosed(folderDir(root, a));
    await this.createParents(address, b);
    if (a === 'INBOX') {
      const target = folderDir(root, b);
      await createMaildirFolder(target);
      for (const d of ['cur', 'new']) {
        for (const f of await readdir(join(root, d))) await rename(join(root, d, f), join(target, d, f));
      }
      return;
    }
    const children = (await this.list(address)).filter((f) => !f.noselect && f.name.startsWith(a + DELIMITER));
    await rename(folderDir(root, a), folderDir(root, b));
    for (const c of children) await rename(folderDir(root, c.name), folderDir(root, b + c.name.slice(a.length)));
    const subs = await this.subscriptions(address);
    if (subs.delete(a)) {
      subs.add(b);
      await this.writeSubscriptions(address, subs);
    }
  }

  async subscriptions(address: string): Promise<Set<string>> {
    const text = await readFile(join(this.maildir(address), SUBSCRIPTIONS_FILE), 'utf8').catch(() => '');
    const out = new Set<string>();
    for (const line of text.split('\n')) {
      const n = line.trim() ? nameFromEntry(`.${line.trim()}`) : undefined;
      if (n) out.add(n);
    }
    return out;
  }

  async subscribe(address: string, name: string, on: boolean): Promise<void> {
    const n = checkName(name);
    const subs = await this.subscriptions(address);
    if (on) subs.add(n);
    else subs.delete(n);
    await this.writeSubscriptions(address, subs);
  }

  private async writeSubscriptions(address: string, subs: Set<string>): Promise<void> {
    const root = this.maildir(address);
    await mkdir(root, { recursive: true });
    const tmp = join(root, `${SUBSCRIPTIONS_FILE}.${process.pid}.${++tmpCounter}.tmp`);
    await writeFile(tmp, [...subs].map(nameToWire).join('\n') + '\n');
    await rename(tmp, join(root, SUBSCRIPTIONS_FILE));
  }

  /** Opens the shared Mailbox of a folder, refreshed. Throws MAILBOX_NOT_FOUND. */
  async openMailbox(address: string, name: string): Promise<MailboxHandle> {
    const n = checkName(name);
    const dir = folderDir(this.maildir(address), n);
    let e = this.open.get(dir);
    if (!e) {
      if (!(await exists(join(dir, 'cur')))) throw new MailfleetError('MAILBOX_NOT_FOUND', `no such mailbox: ${n}`);
      const root = this.maildir(address);
      const mailbox = this.takeClosed(dir) ?? new Mailbox({ name: n, dir, mimeLimits: this.props.mimeLimits, expungeHistoryUids: this.props.expungeHistoryUids, changeLogBytes: this.props.changeLogBytes, lockHoldMs: this.props.lockHoldMs, newUidValidity: () => nextUidValidity(root), usageDir: root });
      e = this.open.get(dir) ?? { mailbox, address, refs: 0, watchers: new Set() };
      this.open.set(dir, e);
    }
    e.refs++;
    const entry = e;
    try {
      await entry.mailbox.refresh();
    } catch (err) {
      this.releaseEntry(dir, entry);
      throw err;
    }
    let released = false;
    const own = new Set<() => void>();
    return {
      mailbox: entry.mailbox,
      watch: (listener) => {
        own.add(listener);
        this.addWatcher(entry, listener);
        return () => {
          own.delete(listener);
          this.removeWatcher(entry, listener);
        };
      },
      changed: () => {
        for (const w of entry.watchers) w();
      },
      release: () => {
        if (released) return;
        released = true;
        for (const l of own) this.removeWatcher(entry, l);
        this.releaseEntry(dir, entry);
      },
    };
  }

  /** Number of folders held open in this process (for tests and metrics). */
  get openCount(): number {
    return this.open.size;
  }

  private releaseEntry(dir: string, e: Entry): void {
    if (--e.refs > 0) return;
    this.stopWatching(e);
    if (this.open.get(dir) !== e) return;
    this.open.delete(dir);
    // Kept as is: the next open refreshes it, which re-reads only what changed on disk meanwhile.
    this.closed.delete(dir);
    this.closed.set(dir, { mailbox: e.mailbox, at: Date.now() });
    for (const [d, c] of this.closed) {
      if (this.closed.size <= this.keepClosed && Date.now() - c.at < this.keepClosedMs) break;
      this.closed.delete(d);
    }
  }

  private takeClosed(dir: string): Mailbox | undefined {
    const c = this.closed.get(dir);
    if (!c) return undefined;
    this.closed.delete(dir);
    return Date.now() - c.at < this.keepClosedMs ? c.mailbox : undefined;
  }

  /**
   * Gives up the folder locks this process keeps between passes (Mailbox.releaseLock) for the folders at
   * or under `dir`, before it is renamed or removed: a lock file carried along by a rename would name a
   * live holder (this process) and hold the folder under its new name until staleMs.
   */
  private async releaseLocks(dir: string): Promise<void> {
    const under = (d: string) => d === dir || d.startsWith(`${dir}.`);
    for (const [d, e] of this.open) if (under(d)) await e.mailbox.releaseLock();
    for (const [d, c] of this.closed) if (under(d)) await c.mailbox.releaseLock();
  }

  /** Drops kept folders at or under `dir` (deleted or renamed here: a new folder may take the name). */
  private forgetClosed(dir: string): void {
    for (const d of this.closed.keys()) if (d === dir || d.startsWith(`${dir}.`)) this.closed.delete(d);
  }

  private addWatcher(e: Entry, listener: () => void): void {
    e.watchers.add(listener);
    if (e.watchers.size > 1) return;
    const poke = () => {
      void e.mailbox
        .refresh()
        .then((changed) => {
          if (changed) for (const w of e.watchers) w();
        })
        .catch(() => {});
    };
    e.unsubscribe = this.props.events.subscribe(e.address, e.mailbox.name, poke);
    e.timer = setInterval(poke, this.pollIntervalMs);
    e.timer.unref();
  }

  private removeWatcher(e: Entry, listener: () => void): void {
    e.watchers.delete(listener);
    if (e.watchers.size === 0) this.stopWatching(e);
  }

  private stopWatching(e: Entry): void {
    e.unsubscribe?.();
    e.unsubscribe = undefined;
    if (e.timer) clearInterval(e.timer);
    e.timer = undefined;
  }
}

/** `a.b.c` → `a`, `a.b` (outermost first). */
export function superiorNames(name: string): string[] {
  const out: string[] = [];
  for (let i = name.indexOf(DELIMITER); i > 0; i = name.indexOf(DELIMITER, i + 1)) out.push(name.slice(0, i));
  return out;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    // ENOTCONN/EIO (a shared volume without quorum) is an outage, not a missing mailbox.
    throw storeError(e);
  }
}
