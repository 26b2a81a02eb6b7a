/**
 * The small file operations of a folder's locked pass (lock create/unlink, UID list write and rename,
 * message renames and unlinks, directory listings, small message reads), synchronous on a local
 * filesystem and asynchronous on a network one.
 *
 * Why: through `fs/promises` each of them is a FileHandle or request object, a promise and a hand-off
 * to a libuv thread that has to be woken and to wake the loop back; on this 2-core bench box open, close,
 * write and rename dispatches were a quarter of mailfleetd's CPU under bench/imap-stress, for syscalls
 * that a local filesystem answers from the page cache in microseconds. On FUSE (GlusterFS), NFS or CIFS
 * the same syscall is a network round trip, and blocking the event loop on it would stall every other
 * session: there they stay asynchronous. fsync is asynchronous everywhere (a journal commit takes ms).
 */
import { appendFileSync, closeSync, fsync, openSync, readdirSync, readFileSync, renameSync, statfsSync, unlinkSync, writeSync, utimesSync } from 'node:fs';
import { appendFile, open, readdir, readFile, rename, unlink, utimes } from 'node:fs/promises';

/**
 * statfs f_type of filesystems whose metadata operations are local syscalls: ext2/3/4, xfs, btrfs,
 * tmpfs, overlayfs (containers), zfs, f2fs, bcachefs. Anything else (fuse 0x65735546, nfs 0x6969,
 * cifs, ceph, …) counts as remote.
 */
const LOCAL_FS_TYPES = new Set([0xef53, 0x58465342, 0x9123683e, 0x01021994, 0x794c7630, 0x2fc12fc1, 0xf2f52010, 0xca451a4e]);

/** Whether `dir` (which must exist) is on a local filesystem; false when that cannot be told. */
export function isLocalFilesystem(dir: string): boolean {
  try {
    return LOCAL_FS_TYPES.has(Number(statfsSync(dir).type));
  } catch {
    return false;
  }
}

/** Reads under this size are synchronous on a local filesystem; a 20 MB message is not read in one go on the loop. */
export const SYNC_READ_MAX_BYTES = 256 * 1024;

export class FolderIo {
  /** @param sync synchronous small operations (a local filesystem; isLocalFilesystem()) */
  constructor(readonly sync: boolean) {}

  rename(from: string, to: string): Promise<void> | void {
    return this.sync ? renameSync(from, to) : rename(from, to);
  }

  unlink(p: string): Promise<void> | void {
    return this.sync ? unlinkSync(p) : unlink(p);
  }

  readdir(p: string): Promise<string[]> | string[] {
    return this.sync ? readdirSync(p) : readdir(p);
  }

  /** Appends to `p` (created if missing), no fsync: for caches that are rebuilt when lost. */
  append(p: string, text: string): Promise<void> | void {
    return this.sync ? appendFileSync(p, text) : appendFile(p, text);
  }

  utimes(p: string, t: Date): Promise<void> | void {
    return this.sync ? utimesSync(p, t, t) : utimes(p, t, t);
  }

  /** A whole file; synchronous only when `expectedBytes` is small. */
  read(p: string, expectedBytes: number): Promise<Buffer> | Buffer {
    return this.sync && expectedBytes <= SYNC_READ_MAX_BYTES ? readFileSync(p) : readFile(p);
  }

  /**
   * Creates `p` (`wx`: fails with EEXIST if it is there, `w`: truncates), writes `data`, fsyncs when
   * `durable`, closes. Nothing is left open on failure; the caller removes the file if it wants to.
   */
  async writeFile(p: string, data: string | Buffer, flags: 'w' | 'wx', durable: boolean): Promise<void> {
    if (!this.sync || (typeof data !== 'string' && data.length > SYNC_READ_MAX_BYTES)) {
      const fh = await open(p, flags, 0o600);
      try {
        await fh.writeFile(data);
        if (durable) await fh.sync();
      } finally {
        await fh.close();
      }
      return;
    }
    const fd = openSync(p, flags, 0o600);
    try {
      const buf = typeof data === 'string' ? Buffer.from(data) : data;
      for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
      if (durable) await new Promise<void>((res, rej) => fsync(fd, (e) => (e ? rej(e) : res())));
    } finally {
      closeSync(fd);
    }
  }
}

/** Asynchronous everything: a folder whose filesystem is remote or not known yet. */
export const ASYNC_IO = new FolderIo(false);

/** The I/O mode for a folder directory, or undefined while it cannot be told (the directory is not there yet). */
export function folderIoFor(dir: string): FolderIo | undefined {
  try {
    return new FolderIo(LOCAL_FS_TYPES.has(Number(statfsSync(dir).type)));
  } catch {
    return undefined;
  }
}
