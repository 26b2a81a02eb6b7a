/**
 * rspamd's verdict + the spec's per-domain policy → what happens to one message: refused (550 5.7.1),
 * deferred (451 4.7.1), or delivered with header edits and, per recipient, to INBOX or Junk. Pure.
 *
 * - soft reject from rspamd: deferred, whatever the policy;
 * - a virus (an antivirus symbol): refused, whatever the policy;
 * - spam (rspamd's reject, or score ≥ rejectScore): `spam` says refuse or Junk; score ≥ junkScore: Junk;
 *   an SPF fail (R_SPF_FAIL): `spfFail` says score only, Junk or refuse;
 * - after DATA there is one reply for all recipients: the message is refused only when every recipient's
 *   policy refuses it; recipients whose policy refuses get it in Junk when others take it;
 * - submission (authenticated): refused on spam or a virus, never filed to Junk, no X-Spam header.
 */
import type { EffectiveFilterPolicy } from '../spec/defaults.js';
import type { HeaderEdits } from './headers.js';
import type { ScanResult } from './rspamd-client.js';

export type Disposition = 'inbox' | 'junk' | 'reject';

export type Verdict =
  | { readonly kind: 'reject'; readonly reason: 'virus' | 'spam' | 'spf'; readonly text: string }
  | { readonly kind: 'tempfail'; readonly text: string }
  | {
      readonly kind: 'deliver';
      /** Per local target, in order: true files the copy in Junk. */
      readonly junk: readonly boolean[];
      readonly edits: HeaderEdits;
      /** For the log and the verdict metric: spam, spf, or clean. */
      readonly reason: 'spam' | 'spf' | 'clean';
    };

export interface VerdictInput {
  readonly result: ScanResult;
  /** Authenticated submission (the sender's own mail). */
  readonly submission: boolean;
  /** The policy of each local target's domain, in target order. */
  readonly targetPolicies: readonly EffectiveFilterPolicy[];
  /** The policy for the message as a whole (remote recipients, submission): the sender's domain's. */
  readonly messagePolicy: EffectiveFilterPolicy;
  /** Symbols rspamd's antivirus module adds for a virus. */
  readonly virusSymbols: readonly string[];
}

/** The symbol rspamd's SPF module adds when the policy says -all for the client address. */
export const SPF_FAIL_SYMBOL = 'R_SPF_FAIL';

const RANK: Record<Disposition, number> = { inbox: 0, junk: 1, reject: 2 };
const worse = (a: Disposition, b: Disposition): Disposition => (RANK[b] > RANK[a] ? b : a);

function dispositionOf(
  r: ScanResult,
  p: EffectiveFilterPolicy,
): { d: Disposition; why: 'spam' | 'spf' | 'clean' } {
  let d: Disposition = 'inbox';
  let why: 'spam' | 'spf' | 'clean' = 'clean';
  if (r.score >= p.junkScore) {
    d = 'junk';
    why = 'spam';
  }
  if (r.symbols[SPF_FAIL_SYMBOL] && p.spfFail !== 'score' && RANK[p.spfFail] > RANK[d]) {
    d = p.spfFail;
    why = 'spf';
  }
  if ((r.action === 'reject' || r.score >= p.rejectScore) && RANK[p.spam] >= RANK[d]) {
    d = worse(d, p.spam);
    why = 'spam';
  }
  return { d, why };
}

/** rspamd's reason, made safe for one reply line. */
function replyText(r: ScanResult, fallback: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is removed
  const t = (r.messages?.smtp_message ?? '').replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return (t || fallback).slice(0, 200);
}

export function decide(input: VerdictInput): Verdict {
  const { result: r, submission } = input;
  if (r.action === 'soft reject')
    return {
      kind: 'tempfail',
      text: replyText(r, 'message deferred by the content filter, try again later'),
    };
  if (input.virusSymbols.some((s) => r.symbols[s]))
    return { kind: 'reject', reason: 'virus', text: replyText(r, 'virus found') };
  const edits: { milter?: HeaderEdits['milter']; add: Array<[string, string]>; subjectPrefix?: string } = {
    milter: r.milter,
    add: [],
  };
  // DKIM signing: rspamd 3.4 returns the signature beside the milter block, not in it.
  const dkim = r['dkim-signature'];
  if (dkim && !Object.keys(r.milter?.add_headers ?? {}).some((h) => h.toLowerCase() === 'dkim-signature'))
    for (const s of Array.isArray(dkim) ? dkim : [dkim]) edits.add.push(['DKIM-Signature', s as string]);
  if (submission) {
    const { d, why } = dispositionOf(r, input.messagePolicy);
    if (d === 'reject')
      return {
        kind: 'reject',
        reason: why === 'spf' ? 'spf' : 'spam',
        text: replyText(r, 'message refused as spam'),
      };
    return { kind: 'deliver', junk: input.targetPolicies.map(() => false), edits, reason: 'clean' };
  }
  const per = input.targetPolicies.map((p) => dispositionOf(r, p));
  if (per.length === 0) per.push(dispositionOf(r, input.messagePolicy));
  if (per.every((x) => x.d === 'reject')) {
    const why = per[0]!.why === 'spf' ? 'spf' : 'spam';
    return {
      kind: 'reject',
      reason: why,
      text: replyText(
        r,
        why === 'spf' ? "sender not permitted by the domain's SPF policy" : 'message refused as spam',
      ),
    };
  }
  // Header marks follow the most eager policy among the recipients: one copy of the headers serves all.
  const policies = input.targetPolicies.length > 0 ? input.targetPolicies : [input.messagePolicy];
  const addHeaderAt = Math.min(...policies.map((p) => p.addHeaderScore));
  const rewriteAt = Math.min(...policies.map((p) => p.rewriteSubjectScore));
  const junk = per.map((x) => x.d !== 'inbox');
  if (
    r.score >= addHeaderAt ||
    r.action === 'add header' ||
    r.action === 'rewrite subject' ||
    junk.some(Boolean)
  )
    edits.add.push(['X-Spam', 'Yes']);
  if (r.score >= rewriteAt || r.action === 'rewrite subject')
    edits.subjectPrefix =
      policies.find((p) => p.rewriteSubjectScore === rewriteAt)?.subjectPrefix ?? policies[0]!.subjectPrefix;
  const reason = per.find((x) => x.d !== 'inbox')?.why ?? 'clean';
  return { kind: 'deliver', junk: input.targetPolicies.map((_, i) => junk[i]!), edits, reason };
}
