/** The quotas block of the spec: defaults, and errors that name file, line and field. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSpec, SpecError } from '../../lib/spec/index.js';
import { userQuota } from '../../lib/quota/index.js';

const BASE = `version: 1
platform:
  name: demo
domains:
  - name: a.example
`;

function issuesOf(text: string): string[] {
  try {
    parseSpec(text, '/some/dir/mailfleet.yaml');
  } catch (e) {
    assert.ok(e instanceof SpecError, `expected SpecError, got ${String(e)}`);
    return e.message.split('\n');
  }
  assert.fail('spec was accepted');
}

describe('spec quotas', () => {
  it('defaults to 1 GiB per user, messages unlimited, warnings at 80 and 95 %', () => {
    const spec = parseSpec(BASE, '/some/dir/mailfleet.yaml');
    assert.deepEqual(spec.quotas.defaults, { storageBytes: 1024 ** 3, messages: 0 });
    assert.deepEqual(spec.quotas.warnPercents, [80, 95]);
  });

  it('names file, line and field for a bad value and for quotas of a domain the platform does not serve', () => {
    const lines = issuesOf(`${BASE}quotas:\n  defaults:\n    storageBytes: lots\n  domains:\n    b.example:\n      total: { messages: 5 }\n`);
    assert.ok(lines.some((l) => l.startsWith('mailfleet.yaml:8 quotas.defaults.storageBytes: ')), lines.join('\n'));
    const other = issuesOf(`${BASE}quotas:\n  domains:\n    b.example:\n      total: { messages: 5 }\n`);
    assert.deepEqual(other, ['mailfleet.yaml:8 quotas.domains.b.example: quotas for b.example, which is not in domains']);
  });

  it('resolves each resource from the most specific level: live > spec user > directory > domain default > platform', () => {
    const spec = parseSpec(
      `${BASE}quotas:\n  defaults: { storageBytes: 100, messages: 10 }\n  domains:\n    a.example:\n      user: { storageBytes: 200 }\n      users:\n        ceo: { messages: 99 }\n`,
      '/some/dir/mailfleet.yaml',
    ).quotas;
    assert.deepEqual(userQuota(spec, 'bob@a.example', undefined, undefined).limit, { storageBytes: 200, messages: 10 });
    assert.deepEqual(userQuota(spec, 'bob@a.example', undefined, { bytes: 300 }).limit, { storageBytes: 300, messages: 10 });
    const ceo = userQuota(spec, 'ceo@a.example', { storageBytes: 5 }, { bytes: 300 });
    assert.deepEqual(ceo.limit, { storageBytes: 5, messages: 99 });
    assert.deepEqual(ceo.source, { storageBytes: 'live', messages: 'spec-user' });
  });

  it('takes the message count from the directory too (directory.attributes.quotaMessages), each resource on its own', () => {
    const spec = parseSpec(`${BASE}quotas:\n  defaults: { storageBytes: 100, messages: 10 }\n`, '/some/dir/mailfleet.yaml').quotas;
    const both = userQuota(spec, 'bob@a.example', undefined, { bytes: 300, messages: 7 });
    assert.deepEqual(both.limit, { storageBytes: 300, messages: 7 });
    assert.deepEqual(both.source, { storageBytes: 'directory', messages: 'directory' });
    const onlyMessages = userQuota(spec, 'bob@a.example', undefined, { messages: 7 });
    assert.deepEqual(onlyMessages.limit, { storageBytes: 100, messages: 7 });
    assert.deepEqual(onlyMessages.source, { storageBytes: 'spec-default', messages: 'directory' });
  });
});
