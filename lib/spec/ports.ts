/** Port conventions shared by the checks and the plan. */
import type { DomainSpec, Protocol } from './schema.js';

/** Standard ports of the shared listeners in the cloud. */
export const STANDARD_PORT: Readonly<Record<Protocol, number>> = Object.freeze({
  smtp: 25,
  submission: 587,
  submissions: 465,
  imap: 143,
  imaps: 993,
  pop3: 110,
  pop3s: 995,
});

/** A dedicated tenant takes a block of ports; each protocol has a fixed offset inside it. */
export const DEDICATED_BLOCK = 10;
export const PROTOCOL_OFFSET: Readonly<Record<Protocol, number>> = Object.freeze({
  smtp: 0,
  submission: 1,
  submissions: 2,
  imap: 3,
  imaps: 4,
  pop3: 5,
  pop3s: 6,
});

/** First cloud port of dedicated tenant blocks (20000–24999 holds 500 tenants). */
export const CLOUD_DEDICATED_BASE = 20000;
/** Behind HAProxy in the cloud, the daemon listens on 10000 + the standard port, with PROXY v2. */
export const CLOUD_DAEMON_OFFSET = 10000;

export const DEFAULT_DEDICATED_PROTOCOLS: readonly Protocol[] = ['submission', 'submissions', 'imap', 'imaps', 'pop3', 'pop3s'];

export function dedicatedProtocols(d: Pick<DomainSpec, 'protocols'>): readonly Protocol[] {
  return d.protocols ?? DEFAULT_DEDICATED_PROTOCOLS;
}

/** Dedicated tenant slots: slot n owns the port block CLOUD_DEDICATED_BASE + n × DEDICATED_BLOCK (20000–24999). */
export const DEDICATED_SLOTS = 500;
/** AWS quota: listeners per Network Load Balancer. */
export const NLB_LISTENER_QUOTA = 50;
/** Shared listeners (one per protocol), all on NLB shard 0. */
const SHARED_LISTENERS = 7;
/**
 * Each NLB shard owns a fixed range of slots, so a tenant's shard follows from its slot alone: shard 0
 * slots 0–6 (beside the 7 shared listeners: 7 + 7 × 6 = 49), then 8 slots a shard (8 × 6 = 48). A tenant
 * keeps its port block and its NLB (its public name) while others are added, removed or reordered.
 */
export const SHARD0_SLOTS = 7;
export const SHARD_SLOTS = 8;

export function shardOfSlot(slot: number): number {
  return slot < SHARD0_SLOTS ? 0 : 1 + Math.floor((slot - SHARD0_SLOTS) / SHARD_SLOTS);
}

/** Listeners a shard may still take from dedicated tenants. */
function shardCapacity(shard: number): number {
  return shard === 0 ? NLB_LISTENER_QUOTA - SHARED_LISTENERS : NLB_LISTENER_QUOTA;
}

export interface SlotAssignment {
  /** Slot by domain index (dedicated domains only). */
  readonly slots: ReadonlyMap<number, number>;
  /** Why an explicit slot cannot be kept (duplicate, shard over the listener quota), by domain index. */
  readonly problems: ReadonlyArray<{ readonly index: number; readonly message: string }>;
}

/**
 * Slots of the dedicated tenants: an explicit `slot` is kept for life (what makes the plan append-stable);
 * a tenant without one takes the lowest free slot whose shard has room, in spec order (positional:
 * it may move when tenants before it change; pin it by writing the slot its ports show).
 */
export function dedicatedSlots(domains: readonly Pick<DomainSpec, 'name' | 'listeners' | 'protocols' | 'slot'>[]): SlotAssignment {
  const slots = new Map<number, number>();
  const owner = new Map<number, number>();
  const load = new Map<number, number>();
  const problems: { index: number; message: string }[] = [];
  const add = (shard: number, n: number) => load.set(shard, (load.get(shard) ?? 0) + n);
  domains.forEach((d, i) => {
    if (d.listeners !== 'dedicated' || d.slot === undefined) return;
    const other = owner.get(d.slot);
    if (other !== undefined) {
      problems.push({ index: i, message: `slot ${d.slot} is taken by ${domains[other]!.name}` });
      return;
    }
    const n = dedicatedProtocols(d).length;
    const shard = shardOfSlot(d.slot);
    if ((load.get(shard) ?? 0) + n > shardCapacity(shard))
      problems.push({ index: i, message: `slot ${d.slot} puts NLB shard ${shard} over ${NLB_LISTENER_QUOTA} listeners: choose a slot of another shard` });
    owner.set(d.slot, i);
    slots.set(i, d.slot);
    add(shard, n);
  });
  domains.forEach((d, i) => {
    if (d.listeners !== 'dedicated' || d.slot !== undefined) return;
    const n = dedicatedProtocols(d).length;
    let s = 0;
    while (s < DEDICATED_SLOTS && (owner.has(s) || (load.get(shardOfSlot(s)) ?? 0) + n > shardCapacity(shardOfSlot(s)))) s++;
    if (s >= DEDICATED_SLOTS) {
      problems.push({ index: i, message: `no free slot left (${DEDICATED_SLOTS} dedicated tenants at most)` });
      return;
    }
    owner.set(s, i);
    slots.set(i, s);
    add(shardOfSlot(s), n);
  });
  return { slots, problems };
}

export function firstSlotOfShard(shard: number): number {
  return shard === 0 ? 0 : SHARD0_SLOTS + (shard - 1) * SHARD_SLOTS;
}
