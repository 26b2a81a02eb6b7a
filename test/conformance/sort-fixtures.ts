/**
 * The messages the SORT / THREAD scripts use (test/conformance/imap-sort.test.ts against Dovecot, and
 * test/daemon/imap-sort-thread.test.ts with the answers Dovecot agreed to).
 */

/** A message with the given headers (undefined leaves a header out). */
export function msg(h: { id?: string; refs?: string; irt?: string; subject?: string; date?: string; from?: string; to?: string; cc?: string }, body = 'body\r\n'): string {
  const lines = [
    h.date !== undefined ? `Date: ${h.date}` : undefined,
    h.from !== undefined ? `From: ${h.from}` : undefined,
    h.to !== undefined ? `To: ${h.to}` : undefined,
    h.cc !== undefined ? `Cc: ${h.cc}` : undefined,
    h.subject !== undefined ? `Subject: ${h.subject}` : undefined,
    h.id !== undefined ? `Message-ID: ${h.id}` : undefined,
    h.refs !== undefined ? `References: ${h.refs}` : undefined,
    h.irt !== undefined ? `In-Reply-To: ${h.irt}` : undefined,
  ].filter((l) => l !== undefined);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/** Messages for SORT: each key orders them differently; internal dates fixed by APPEND. */
export const SORT_SET = [
  { m: msg({ date: 'Mon, 3 Jan 2022 10:00:00 +0000', from: 'Zed <zed@example.com>', to: 'b@example.com', cc: 'c@example.com', subject: 'Re: banana' }), at: '05-Jan-2022 10:00:00 +0000' },
  { m: msg({ date: 'Sat, 1 Jan 2022 10:00:00 +0000', from: 'amy@example.com', to: 'c@example.com', subject: '[list] apple' }, 'longer body\r\n'.repeat(20)), at: '02-Jan-2022 10:00:00 +0000' },
  { m: msg({ date: 'Sun, 2 Jan 2022 03:00:00 +0500', from: '"Bob" <Bob@example.com>', to: 'a@example.com', cc: 'a@example.com', subject: 'Fwd: Cherry (fwd)' }), at: '04-Jan-2022 10:00:00 +0000' },
  { m: msg({ from: 'carl@example.com', subject: 'apple' }, 'x\r\n'.repeat(5)), at: '01-Jan-2022 10:00:00 +0000' },
  { m: msg({ date: 'Sun, 2 Jan 2022 10:00:00 +0000', to: 'A@example.com', subject: 'banana' }), at: '03-Jan-2022 10:00:00 +0000' },
];

/** Messages for THREAD: a tree with missing parents, a References loop, a duplicate Message-ID, In-Reply-To only, and subject merges. */
export const THREAD_SET = [
  msg({ id: '<1@x>', subject: 'Hello', date: 'Mon, 3 Jan 2022 01:00:00 +0000' }),
  msg({ id: '<2@x>', refs: '<1@x>', subject: 'Re: Hello', date: 'Mon, 3 Jan 2022 02:00:00 +0000' }),
  msg({ id: '<3@x>', refs: '<1@x> <gone@x>', subject: 'Re: Hello', date: 'Mon, 3 Jan 2022 03:00:00 +0000' }),
  msg({ id: '<4@x>', refs: '<gone2@x>', subject: 'Other', date: 'Mon, 3 Jan 2022 04:00:00 +0000' }),
  msg({ id: '<5@x>', refs: '<gone2@x>', subject: 'Re: Other', date: 'Mon, 3 Jan 2022 05:00:00 +0000' }),
  msg({ id: '<6@x>', refs: '<7@x>', subject: 'Loop', date: 'Mon, 3 Jan 2022 06:00:00 +0000' }),
  msg({ id: '<7@x>', refs: '<6@x>', subject: 'Re: Loop', date: 'Mon, 3 Jan 2022 07:00:00 +0000' }),
  msg({ subject: 'Hello', date: 'Sun, 2 Jan 2022 00:00:00 +0000' }),
  msg({ id: '<1@x>', subject: 'dup', date: 'Mon, 3 Jan 2022 08:00:00 +0000' }),
  msg({ id: '<10@x>', irt: '<2@x>', subject: 'Re: Hello', date: 'Mon, 3 Jan 2022 09:00:00 +0000' }),
  msg({ id: '<11@x>', refs: '<12@x> <13@x>', subject: 'Fwd: Other', date: 'Mon, 3 Jan 2022 10:00:00 +0000' }),
  msg({ id: '<12@x>', refs: '<11@x>', subject: 'third', date: 'Mon, 3 Jan 2022 11:00:00 +0000' }),
  msg({ id: '<14@x>', subject: 'Re: [list] lonely', date: 'Mon, 3 Jan 2022 12:00:00 +0000' }),
  msg({ id: '<15@x>', subject: '[list] lonely', date: 'Mon, 3 Jan 2022 13:00:00 +0000' }),
];

