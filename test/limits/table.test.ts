import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LimitTable } from '../../lib/limits/table.js';
import { formatScope, parseScope } from '../../lib/limits/scope.js';
import { limitsStatePath } from '../../lib/limits/state-file.js';
import { isMailfleetError } from '../../lib/errors.js';
import { tempDir, testConfig } from './fixture.js';

describe('limit scope grammar', () => {
  test('GIVEN each scope form WHEN parsed and formatted THEN the canonical text comes back', () => {
    for (const [input, canonical] of [
      ['imap.perUser', 'imap.perUser'],
      ['imap.perUser@Example.ORG', 'imap.perUser@example.org'],
      ['listener:default-imap', 'listener:default-imap'],
      ['user:Alice@Example.com:imap', 'user:alice@example.com:imap'],
      ['ip:192.0.2.7:smtp', 'ip:192.0.2.7:smtp'],
      ['ip:2001:db8::1:pop3', 'ip:2001:db8::1:pop3'],
      ['rates.messagesPerMinutePerSender', 'rates.messagesPerMinutePerSender'],
      ['rates.recipientsPerMessage@example.com', 'rates.recipientsPerMessage@example.com'],
      ['user:Alice@Example.com:rates.loginsPerMinutePerUser', 'user:alice@example.com:rates.loginsPerMinutePerUser'],
      ['user:bob@example.org:rates.messagesPerMinutePerSender', 'user:bob@example.org:rates.messagesPerMinutePerSender'],
    ])
      assert.equal(formatScope(parseScope(input!)), canonical);
  });

  test('fails when a scope is malformed, with a message naming it', () => {
    for (const [input, re] of [
      ['imap.perUsr', /limit scope "imap.perUsr": unknown field "perUsr"/],
      ['imapx.perUser', /unknown service "imapx"/],
      ['imap.listenerConnections', /HAProxy setting: use listener:<name>/],
      ['imap.perIp@example.com', /not per domain/],
      ['user:alice:imap', /not a mail address/],
      ['ip:300.1.1.1:imap', /not an IP address/],
      ['rates.foo', /unknown rate "foo"/],
      ['user:alice@example.com:rates.messagesPerMinutePerIp', /"messagesPerMinutePerIp" is not a per-user rate/],
      ['user:alice@example.com:rates.foo', /"foo" is not a per-user rate/],
      ['whatever', /expected <service>.<field>/],
    ] as const)
      assert.throws(() => parseScope(input), re);
  });
});

describe('LimitTable', () => {
  const config = testConfig();

  test('GIVEN the plan only THEN platform, domain and listener values come from it', () => {
    const t = new LimitTable({ config });
    assert.equal(t.limitOf({ kind: 'user', service: 'imap', id: 'a@example.com' }), 20);
    assert.equal(t.limitOf({ kind: 'user', service: 'imap', id: 'a@example.org' }), 5);
    assert.equal(t.limitOf({ kind: 'userip', service: 'imap', id: 'a@example.com|1.2.3.4' }), 10);
    assert.equal(t.limitOf({ kind: 'domain', service: 'imap', id: 'example.org' }), 40);
    assert.equal(t.limitOf({ kind: 'domain', service: 'pop3', id: 'example.com' }), 500);
    assert.equal(t.limitOf({ kind: 'ip', service: 'smtp', id: '192.0.2.1' }), 20);
    assert.equal(t.limitOf({ kind: 'port', service: 'imap', id: '2143' }), 10000);
    assert.equal(t.limitOf({ kind: 'listener', service: 'imap', id: 'default-imap' }), 10000);
  });

  test('GIVEN overrides at every level THEN the most specific wins', () => {
    const t = new LimitTable({ config });
    t.apply([
      { scope: 'imap.perUser', value: 7 },
      { scope: 'user:bob@example.com:imap', value: 2 },
      { scope: 'listener:example-org-imap', value: 30 },
      { scope: 'ip:192.0.2.9:smtp', value: 1 },
    ]);
    // platform override reaches example.com, not example.org which has its own plan value
    assert.equal(t.limitOf({ kind: 'user', service: 'imap', id: 'a@example.com' }), 7);
    assert.equal(t.limitOf({ kind: 'user', service: 'imap', id: 'a@example.org' }), 5);
    assert.equal(t.limitOf({ kind: 'user', service: 'imap', id: 'BOB@example.com' }), 2);
    assert.equal(t.limitOf({ kind: 'listener', service: 'imap', id: 'example-org-imap' }), 30);
    assert.equal(t.limitOf({ kind: 'ip', service: 'smtp', id: '192.0.2.9' }), 1);
    assert.equal(t.limitOf({ kind: 'ip', service: 'smtp', id: '192.0.2.10' }), 20);
    // the directory's per-user value beats domain and platform values, but not the operator's user override
    const dirUser = { limits: { imap: { perUser: 3 } } };
    assert.equal(t.limitOf({ kind: 'user', service: 'imap', id: 'a@example.com' }, dirUser), 3);
    assert.equal(t.limitOf({ kind: 'user', service: 'imap', id: 'bob@example.com' }, dirUser), 2);
    t.apply([{ scope: 'imap.perUser@example.org', value: 9 }]);
    assert.equal(t.limitOf({ kind: 'user', service: 'imap', id: 'a@example.org' }), 9);
  });

  test('GIVEN an override WHEN set to default THEN the plan value returns and the change says so', () => {
    const t = new LimitTable({ config });
    const [set] = t.apply([{ scope: 'pop3.perUser', value: '1' }]);
    assert.deepEqual(set, {
      scope: 'pop3.perUser',
      previousOverride: null,
      override: 1,
      before: 3,
      after: 1,
      changed: true,
    });
    const [unset] = t.apply([{ scope: 'pop3.perUser', value: 'default' }]);
    assert.deepEqual(unset, {
      scope: 'pop3.perUser',
      previousOverride: 1,
      override: null,
      before: 1,
      after: 3,
      changed: true,
    });
  });

  test('fails when a value is impossible or an entity unknown, and nothing of the batch applies', () => {
    const t = new LimitTable({ config });
    for (const [value, re] of [
      [0, /"imap.perUser": value must be a positive integer, got 0/],
      [-3, /positive integer/],
      [1.5, /positive integer/],
      ['ten', /positive integer/],
      [1e12, /above the maximum/],
    ] as const)
      assert.throws(
        () =>
          t.apply([
            { scope: 'imap.perDomain', value: 1 },
            { scope: 'imap.perUser', value },
          ]),
        re,
      );
    assert.throws(() => t.apply([{ scope: 'listener:nope-imap', value: 3 }]), /no listener "nope-imap"/);
    assert.throws(
      () => t.apply([{ scope: 'imap.perUser@other.net', value: 3 }]),
      /"other.net" is not a domain of this platform/,
    );
    assert.deepEqual(t.getOverrides(), {});
  });

  test('GIVEN a state file WHEN changes are applied THEN a new table loads them with their history', () => {
    const tmp = tempDir();
    after(tmp.cleanup);
    const file = limitsStatePath(tmp.dir);
    const t1 = new LimitTable({ config, stateFile: file });
    t1.apply([{ scope: 'imap.perUser', value: 4 }], 'test');
    t1.apply([{ scope: 'listener:default-pop3', value: 11 }], 'test');
    const t2 = new LimitTable({ config, stateFile: file });
    assert.deepEqual(t2.getOverrides(), { 'imap.perUser': 4, 'listener:default-pop3': 11 });
    assert.equal(t2.getHistory().length, 2);
    assert.equal(t2.limitOf({ kind: 'listener', service: 'pop3', id: 'default-pop3' }), 11);
    const rows = t2.describe();
    assert.deepEqual(
      rows.find((r) => r.scope === 'imap.perUser'),
      { scope: 'imap.perUser', value: 4, plan: 20, override: 4 },
    );
    assert.ok(JSON.parse(readFileSync(file, 'utf8')).overrides['imap.perUser'] === 4);
  });

  test('fails loudly when the state file is corrupt or holds an impossible value', () => {
    const tmp = tempDir();
    after(tmp.cleanup);
    const file = join(tmp.dir, 'limits-state.json');
    writeFileSync(file, '{"version":1,"overrides":{"imap.perUser":');
    assert.throws(
      () => new LimitTable({ config, stateFile: file }),
      (e) => isMailfleetError(e, 'SPEC_IO') && /limits-state.json is unreadable/.test(e.message),
    );
    writeFileSync(file, JSON.stringify({ version: 1, overrides: { 'imap.perUser': 0 } }));
    assert.throws(() => new LimitTable({ config, stateFile: file }), /invalid at overrides.imap.perUser/);
    writeFileSync(file, JSON.stringify({ version: 1, overrides: { 'imap.perUsr': 3 } }));
    assert.throws(() => new LimitTable({ config, stateFile: file }), /unknown field "perUsr"/);
  });

  test('fails when the state file cannot be written, and the limit stays as it was', () => {
    const tmp = tempDir();
    after(tmp.cleanup);
    // A regular file where the state folder should be: every write fails with ENOTDIR.
    writeFileSync(join(tmp.dir, 'blocker'), '');
    const t = new LimitTable({ config, stateFile: join(tmp.dir, 'blocker', 'limits-state.json') });
    assert.throws(
      () => t.apply([{ scope: 'imap.perUser', value: 4 }]),
      /limit change not applied: cannot write/,
    );
    assert.equal(t.limitOf({ kind: 'user', service: 'imap', id: 'a@example.com' }), 20);
  });

  test('rates: domain rates, then overrides', () => {
    const cfg = testConfig({
      domains: [{ name: 'example.com', rates: { messagesPerMinutePerSender: 5 } }, { name: 'example.org' }],
    });
    const t = new LimitTable({ config: cfg });
    assert.equal(t.rateOf('messagesPerMinutePerSender', 'example.com'), 5);
    assert.equal(t.rateOf('messagesPerMinutePerSender', 'example.org'), 60);
    t.apply([{ scope: 'rates.messagesPerMinutePerSender', value: 30 }]);
    assert.equal(t.rateOf('messagesPerMinutePerSender', 'example.org'), 30);
    assert.equal(t.rateOf('messagesPerMinutePerSender', 'example.com'), 5);
    // One user's own rate wins over its domain's and the platform's; other users keep theirs.
    assert.equal(t.rateOf('loginsPerMinutePerUser', 'example.com', 'a@example.com'), 0, 'no login rate by default');
    t.apply([
      { scope: 'user:a@example.com:rates.messagesPerMinutePerSender', value: 2 },
      { scope: 'user:a@example.com:rates.loginsPerMinutePerUser', value: 7 },
    ]);
    assert.equal(t.rateOf('messagesPerMinutePerSender', 'example.com', 'a@example.com'), 2);
    assert.equal(t.rateOf('messagesPerMinutePerSender', 'example.com', 'b@example.com'), 5);
    assert.equal(t.rateOf('loginsPerMinutePerUser', 'example.com', 'A@example.com'), 7);
    assert.equal(t.effective(parseScope('user:a@example.com:rates.loginsPerMinutePerUser')), 7);
    assert.equal(t.planValue(parseScope('user:a@example.com:rates.loginsPerMinutePerUser')), 0);
  });
});
