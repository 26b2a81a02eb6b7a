import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseSpec } from '../../lib/spec/index.js';
import { buildPlan } from '../../lib/plan/index.js';

it('the spec shown in the README parses and plans (a YAML flow mapping once split its DNs at the commas)', () => {
  const readme = readFileSync('README.md', 'utf8');
  const m = /```yaml\n(# yaml-language-server[\s\S]*?)```/.exec(readme);
  assert.ok(m, 'README has the example spec');
  const spec = parseSpec(m[1]!, 'README.md');
  assert.equal(spec.directory.kind === 'ldap' && spec.directory.baseDn, 'dc=acme,dc=example');
  assert.equal(spec.smtp.relay?.host, 'email-smtp.eu-west-1.amazonaws.com');
  assert.ok(buildPlan(spec).listeners.length > 0);
});
