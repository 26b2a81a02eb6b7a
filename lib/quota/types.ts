/** Mailbox quotas: the shapes shared by the daemon's quota service, the admin API and the CLI. */
import type { Usage } from '../store/usage.js';

/** Where an effective limit came from, most specific first. */
export type QuotaSource = 'live' | 'spec-user' | 'directory' | 'spec-domain' | 'spec-default' | 'none';

export interface QuotaLimit {
  /** Bytes; 0 = unlimited. */
  readonly storageBytes: number;
  /** Messages; 0 = unlimited. */
  readonly messages: number;
}

/** A live override (`mailfleet quota set`): either resource may be left to the spec. */
export interface QuotaOverride {
  readonly storageBytes?: number;
  readonly messages?: number;
}

export interface UserQuotaStatus {
  readonly address: string;
  readonly usage: Usage;
  readonly limit: QuotaLimit;
  readonly source: { readonly storageBytes: QuotaSource; readonly messages: QuotaSource };
  readonly domain: DomainQuotaStatus;
}

export interface DomainQuotaStatus {
  readonly domain: string;
  /** The sum of the domain's users (cached for quotas.domainUsageCacheSeconds). */
  readonly usage: Usage;
  readonly limit: QuotaLimit;
}

/** Why a message may not go in. */
export type QuotaVerdict = 'ok' | 'user-storage' | 'user-messages' | 'domain-storage' | 'domain-messages';
