/**
 * UIDs follow arrival order: deliveries picked up from new/ in one pass get UIDs in the order they were
 * delivered, not in the file system's directory order (ext4 hashes names). Seen as POP3 message 1 being
 * the second delivery in a CI run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MaildirDelivery } from '../../lib/store/maildir/deliver.js';
import { maildirPath } from '../../lib/store/maildir/paths.js';
import { byArrival, LocalMailboxEvents, MailStore } from '../../lib/store/mailbox/index.js';

test('byArrival: seconds, then the delivery counter of one process, then microseconds; M99 before M100000', () => {
  const names = ['1700000001.M5P7Q1Rx.h', '1700000000.M100000P7Q3Rx.h', '1700000000.M99P7Q2Rx.h', '1700000000.M50P8Q9Rx.h', 'other-tool-name'];
  assert.deepEqual([...names].sort(byArrival), ['1700000000.M50P8Q9Rx.h', '1700000000.M99P7Q2Rx.h', '1700000000.M100000P7Q3Rx.h', '1700000001.M5P7Q1Rx.h', 'other-tool-name']);
});

test('40 deliveries picked up in one refresh get UIDs in delivery order', async () => {
  const root = await mkdtemp(join(tmpdir(), 'mf-order-'));
  try {
    const delivery = new MaildirDelivery({ root });
    const store = new MailStore({ maildirOf: (a) => maildirPath(root, a), events: new LocalMailboxEvents(), pollIntervalMs: 60_000 });
    await store.ensureUser('ann@example.com');
    const h = await store.openMailbox('ann@example.com', 'INBOX'); // the list exists: the next pass is the quick one
    try {
      for (let i = 0; i < 40; i++) await delivery.deliver([{ address: 'ann@example.com' }], Buffer.from(`Subject: m${i}\r\n\r\nbody\r\n`));
      await h.mailbox.refresh();
      const subjects: string[] = [];
      for (const r of h.mailbox.messages) subjects.push(/Subject: (m\d+)/.exec((await h.mailbox.read(r)).toString())![1]!);
      assert.deepEqual(subjects, Array.from({ length: 40 }, (_, i) => `m${i}`));
    } finally {
      h.release();
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
