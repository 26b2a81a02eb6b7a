/**
 * Preload for the bench's daemon process (`node --import tsx --import ./bench/governor/slow-disk.ts`): one
 * simulated slow disk. Every durability point of the process — fs.fsync and fs.fdatasync (the Maildir
 * delivery), FileHandle.sync and .datasync (indexes, usage files), and each write on a file opened with
 * O_DSYNC (a small message's single durable write) — waits its turn in one FIFO and then BENCH_FSYNC_MS more
 * before the real call runs. Plain writes and reads are not slowed (a page cache absorbs them).
 */
import fs from 'node:fs';
import { open as openHandle } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MS = Number(process.env.BENCH_FSYNC_MS ?? 4);
let disk: Promise<unknown> = Promise.resolve();
/** Durable operations so far, by the code that asked (BENCH_DISK_SITES=1: a stack frame per op, for the bench's ops-per-delivery figure). */
const sites = new Map<string, number>();
let ops = 0;
/** Queue waits (ms before an operation's device time began) since the last report. */
let waits: number[] = [];
process.on('SIGUSR2', () => {
  waits.sort((a, b) => a - b);
  const q = (p: number) => (waits.length ? waits[Math.min(waits.length - 1, Math.floor(waits.length * p))]! : 0);
  const wait = { n: waits.length, p50: q(0.5), p99: q(0.99), max: waits.at(-1) ?? 0 };
  waits = [];
  process.stderr.write(`slow-disk ${JSON.stringify({ ops, wait, sites: Object.fromEntries(sites) })}\n`);
});

/** Runs `real` after every earlier durable operation and MS of simulated device time. */
function onDisk<T>(real: () => Promise<T>): Promise<T> {
  ops++;
  if (process.env.BENCH_DISK_SITES) {
    const frame = (new Error().stack ?? '').split('\n').slice(2).find((l) => l.includes('/lib/')) ?? '?';
    const site = frame.replace(/^.*\/lib\//, 'lib/').replace(/\)$/, '');
    sites.set(site, (sites.get(site) ?? 0) + 1);
  }
  const asked = performance.now();
  const mine = disk
    .then(() => {
      waits.push(performance.now() - asked);
      return new Promise((r) => setTimeout(r, MS));
    })
    .then(real);
  disk = mine.catch(() => undefined);
  return mine;
}

type Cb = (e: NodeJS.ErrnoException | null, ...rest: unknown[]) => void;
const viaDisk = (real: (...a: unknown[]) => void) =>
  function (...args: unknown[]) {
    const cb = args.pop() as Cb;
    void onDisk(() => new Promise<void>((r) => real(...args, (...res: Parameters<Cb>) => (cb(...res), r())))).catch(() => undefined);
  };

const realFsync = fs.fsync as unknown as (...a: unknown[]) => void;
const realFdatasync = fs.fdatasync as unknown as (...a: unknown[]) => void;
const realWrite = fs.write as unknown as (...a: unknown[]) => void;
const realOpen = fs.open as unknown as (...a: unknown[]) => void;
const realClose = fs.close as unknown as (...a: unknown[]) => void;
const dsync = new Set<number>();

Object.assign(fs, {
  fsync: viaDisk(realFsync),
  fdatasync: viaDisk(realFdatasync),
  open(...args: unknown[]) {
    const cb = args.pop() as Cb;
    const flags = args[1];
    realOpen(...args, (e: NodeJS.ErrnoException | null, fd: number) => {
      if (!e && typeof flags === 'number' && (flags & fs.constants.O_DSYNC) !== 0) dsync.add(fd);
      cb(e, fd);
    });
  },
  close(fd: number, cb: Cb) {
    dsync.delete(fd);
    realClose(fd, cb);
  },
  write(fd: number, ...rest: unknown[]) {
    if (!dsync.has(fd)) return realWrite(fd, ...rest);
    return viaDisk(realWrite)(fd, ...rest);
  },
});
syncBuiltinESMExports();

const fh = await openHandle(join(tmpdir(), `slow-disk-probe-${process.pid}`), 'w');
const proto = Object.getPrototypeOf(fh) as { sync: () => Promise<void>; datasync: () => Promise<void> };
await fh.close();
await fs.promises.unlink(join(tmpdir(), `slow-disk-probe-${process.pid}`));
for (const m of ['sync', 'datasync'] as const) {
  const real = proto[m];
  proto[m] = function (this: unknown) {
    return onDisk(() => real.call(this));
  };
}
