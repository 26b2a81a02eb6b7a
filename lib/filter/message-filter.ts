/**
 * The daemon's content filter: after DATA and before the reply, the whole message goes to rspamd with its
 * envelope; the verdict (verdict.ts) refuses it, defers it, or lets it through with rspamd's header edits
 * (Authentication-Results, X-Spam-Status, DKIM-Signature for submission), X-Spam / Subject marks, and each
 * local copy in INBOX or Junk. rspamd down or too slow: filtering.rspamd.onUnavailable (defer, or deliver
 * unscanned), counted in mailfleetd_filter_unavailable_total.
 */
import type { Registry } from 'prom-client';
import { Counter } from 'prom-client';
import type { Logger } from '../log.js';
import { effectiveFilterPolicy } from '../spec/defaults.js';
import type { FilteringSpec } from '../spec/schema.js';
import type { DeliveryTarget } from '../store/types.js';
import { editHeaders } from './headers.js';
import { CLAMAV_SYMBOL } from './rspamd-config.js';
import { RspamdClient } from './rspamd-client.js';
import type { FilterHealth } from './health.js';
import { decide } from './verdict.js';

/** The special-use \Junk folder every user has (lib/store/mailbox/store.ts SPECIAL_USE). */
export const JUNK_FOLDER = 'Junk';

export interface FilterMessage {
  /** Authenticated submission: rspamd gets the user (signing, no inbound checks). */
  readonly user?: string;
  readonly remoteAddress: string;
  readonly helo?: string;
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
  readonly queueId: string;
  /** Local mailboxes the message goes to. */
  readonly targets: readonly DeliveryTarget[];
  /** The whole message as it would be stored (our Received header first). */
  readonly message: Buffer;
}

export type FilterOutcome =
  | { readonly kind: 'reject'; readonly text: string }
  | { readonly kind: 'tempfail'; readonly text: string }
  | { readonly kind: 'deliver'; readonly message: Buffer; readonly targets: readonly DeliveryTarget[] };

export interface MessageFilterProps {
  readonly filtering: FilteringSpec;
  /** Our host name: the authserv-id of Authentication-Results. */
  readonly hostname: string;
  readonly registry: Registry;
  readonly logger: Logger;
  /** Told of every scan's outcome, for the daemon's health (health.ts). @default - not told */
  readonly health?: FilterHealth;
}

function counter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
): Counter<L> {
  return (
    (registry.getSingleMetric(name) as Counter<L> | undefined) ??
    new Counter<L>({ name, help, labelNames, registers: [registry] })
  );
}

const domainOf = (address: string) => address.slice(address.lastIndexOf('@') + 1).toLowerCase();

export class MessageFilter {
  private readonly client: RspamdClient;
  private readonly unavailable: Counter<'outcome'>;
  private readonly verdicts: Counter<'verdict'>;
  private readonly virusSymbols: readonly string[];

  constructor(private readonly props: MessageFilterProps) {
    this.client = new RspamdClient({
      url: props.filtering.rspamd.url,
      timeoutMs: props.filtering.rspamd.timeoutMs,
    });
    this.unavailable = counter(
      props.registry,
      'mailfleetd_filter_unavailable_total',
      'Messages rspamd gave no verdict for, by what happened to them (tempfail: 451 4.7.1, accept: delivered unscanned)',
      ['outcome'],
    );
    this.verdicts = counter(
      props.registry,
      'mailfleetd_filter_verdicts_total',
      'Messages scanned by rspamd, by outcome (inbox, junk, reject-spam, reject-virus, reject-spf, tempfail)',
      ['verdict'],
    );
    this.virusSymbols = [CLAMAV_SYMBOL];
  }

  async scan(m: FilterMessage): Promise<FilterOutcome> {
    const f = this.props.filtering;
    let result;
    try {
      result = await this.client.check(
        {
          ip: m.remoteAddress,
          helo: m.helo,
          user: m.user,
          from: m.mailFrom,
          rcpt: m.rcptTo,
          queueId: m.queueId,
          mtaName: this.props.hostname,
        },
        m.message,
      );
    } catch (e) {
      this.props.health?.recordFailure(e as Error);
      const outcome = f.rspamd.onUnavailable;
      this.unavailable.inc({ outcome });
      this.props.logger.warn({ err: e, outcome }, 'rspamd unavailable');
      if (outcome === 'tempfail')
        return { kind: 'tempfail', text: 'content filter unavailable, try again later' };
      return { kind: 'deliver', message: m.message, targets: m.targets };
    }
    this.props.health?.recordVerdict();
    const policyOf = (d: string) => effectiveFilterPolicy(f, d);
    const verdict = decide({
      result,
      submission: m.user !== undefined,
      targetPolicies: m.targets.map((t) => policyOf(domainOf(t.address))),
      messagePolicy: policyOf(domainOf(m.user ?? m.targets[0]?.address ?? m.mailFrom)),
      virusSymbols: this.virusSymbols,
    });
    this.props.logger.info(
      {
        action: result.action,
        score: result.score,
        verdict: verdict.kind,
        reason: 'reason' in verdict ? verdict.reason : undefined,
      },
      'rspamd verdict',
    );
    if (verdict.kind === 'tempfail') {
      this.verdicts.inc({ verdict: 'tempfail' });
      return verdict;
    }
    if (verdict.kind === 'reject') {
      this.verdicts.inc({ verdict: `reject-${verdict.reason}` });
      return { kind: 'reject', text: verdict.text };
    }
    const targets = m.targets.map((t, i) => (verdict.junk[i] ? { ...t, folder: JUNK_FOLDER } : t));
    this.verdicts.inc({ verdict: verdict.junk.some(Boolean) ? 'junk' : 'inbox' });
    return { kind: 'deliver', message: editHeaders(m.message, verdict.edits), targets };
  }

  close(): void {
    this.client.close();
  }
}
