/**
 * Effective quota of a user and of a domain, from the most specific setting down (pure):
 *   user:   live override > spec quotas.domains[d].users[local] > directory attributes (directory.attributes.quota
 *           for bytes, quotaMessages for messages) > spec quotas.domains[d].user > spec quotas.defaults
 *   domain: live override > spec quotas.domains[d].total > unlimited
 * Each resource (storage, messages) resolves on its own, so a live storage override keeps the spec's
 * message cap.
 */
import type { QuotasSpec } from '../spec/schema.js';
import type { QuotaLimit, QuotaOverride, QuotaSource } from './types.js';

export interface ResolvedLimit {
  readonly limit: QuotaLimit;
  readonly source: { readonly storageBytes: QuotaSource; readonly messages: QuotaSource };
}

type Layer = readonly [QuotaSource, QuotaOverride | undefined];

function pick(layers: readonly Layer[], key: keyof QuotaLimit): [number, QuotaSource] {
  for (const [source, l] of layers) {
    const v = l?.[key];
    if (v !== undefined) return [v, source];
  }
  return [0, 'none'];
}

function resolve(layers: readonly Layer[]): ResolvedLimit {
  const [storageBytes, s1] = pick(layers, 'storageBytes');
  const [messages, s2] = pick(layers, 'messages');
  return { limit: { storageBytes, messages }, source: { storageBytes: s1, messages: s2 } };
}

/** What the directory says of one user's quota (either may be missing). */
export interface DirectoryQuota {
  readonly bytes?: number;
  readonly messages?: number;
}

export function userQuota(spec: QuotasSpec, address: string, live: QuotaOverride | undefined, directory: DirectoryQuota | undefined): ResolvedLimit {
  const at = address.lastIndexOf('@');
  const local = address.slice(0, at);
  const d = spec.domains[address.slice(at + 1)];
  return resolve([
    ['live', live],
    ['spec-user', d?.users?.[local]],
    ['directory', directory && { storageBytes: directory.bytes, messages: directory.messages }],
    ['spec-domain', d?.user],
    ['spec-default', spec.defaults],
  ]);
}

export function domainQuota(spec: QuotasSpec, domain: string, live: QuotaOverride | undefined): ResolvedLimit {
  return resolve([
    ['live', live],
    ['spec-domain', spec.domains[domain]?.total],
  ]);
}

/** Whether `usage` plus what is added stays within `limit` (0 = unlimited). */
export function fits(limit: QuotaLimit, usage: { bytes: number; messages: number }, addBytes: number, addMessages: number): 'ok' | 'storage' | 'messages' {
  if (limit.storageBytes > 0 && usage.bytes + addBytes > limit.storageBytes) return 'storage';
  if (limit.messages > 0 && usage.messages + addMessages > limit.messages) return 'messages';
  return 'ok';
}
