import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { parseSpec, SpecError, loadSpec, jsonSchema } from '../../lib/spec/index.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import yaml from 'js-yaml';
import { readFileSync } from 'node:fs';

function issuesOf(text: string): string[] {
  try {
    parseSpec(text, '/some/dir/mailfleet.yaml');
  } catch (e) {
    assert.ok(e instanceof SpecError, `expected SpecError, got ${String(e)}`);
    return e.message.split('\n');
  }
  assert.fail('spec was accepted');
}

const BASE = `version: 1
platform:
  name: demo
domains:
  - name: a.example
`;

describe('spec loading', () => {
  it('names file, line and field for a wrong type (the issue example)', () => {
    const text = `${BASE}  - name: b.example
    limits:
      imap:
        perUser: ten
`;
    assert.deepEqual(issuesOf(text), [
      'mailfleet.yaml:9 domains[1].limits.imap.perUser: expected a positive integer, got "ten"',
    ]);
  });

  it('rejects unknown fields at their line', () => {
    assert.deepEqual(issuesOf(`${BASE}    colour: blue\n`), ['mailfleet.yaml:6 domains[0].colour: unknown field']);
  });

  it('rejects zero and negative limits as not positive integers', () => {
    const lines = issuesOf(`${BASE}limits:\n  pop3:\n    perUser: 0\n  imap: { perIp: -3 }\n`);
    assert.deepEqual(lines, [
      'mailfleet.yaml:8 limits.pop3.perUser: expected a positive integer, got 0',
      'mailfleet.yaml:9 limits.imap.perIp: expected a positive integer, got -3',
    ]);
  });

  it('reports YAML syntax errors with their line', () => {
    const lines = issuesOf('platform:\n  name: x\n domains: [\n');
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^mailfleet\.yaml:3 \(yaml\): /);
  });

  it('names a missing required field', () => {
    assert.match(issuesOf('version: 1\nplatform:\n  name: demo\n')[0]!, /domains: required field missing/);
  });

  it('rejects impossible limits: per-source above the listener cap, user above domain', () => {
    const lines = issuesOf(`${BASE}limits:\n  imap:\n    listenerConnections: 10\n    sourceConnections: 50\n  pop3:\n    perUser: 900\n    perDomain: 100\n`);
    assert.ok(lines.some((l) => /^mailfleet\.yaml:9 limits\.imap\.sourceConnections: sourceConnections \(50\) exceeds listenerConnections \(10\)/.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => /^mailfleet\.yaml:11 limits\.pop3\.perUser: perUser \(900\) exceeds perDomain \(100\)/.test(l)), lines.join('\n'));
  });

  it('rejects clashing local ports', () => {
    const lines = issuesOf(`${BASE}local:\n  ports:\n    imap: 2525\n`);
    assert.deepEqual(lines, ['mailfleet.yaml:8 local.ports.imap: local imap port 2525 clashes with local smtp']);
  });

  it('rejects duplicate domains and a DR region equal to the primary', () => {
    const lines = issuesOf(`${BASE}  - name: A.example
regions:
  primary: { name: eu-west-1, account: "111111111111", availabilityZones: [eu-west-1a, eu-west-1b] }
  dr: { name: eu-west-1, account: "111111111111", availabilityZones: [eu-west-1a, eu-west-1b] }
`);
    assert.ok(lines.some((l) => l.startsWith('mailfleet.yaml:6 domains[1].name: duplicate domain')), lines.join('\n'));
    assert.ok(lines.some((l) => l.startsWith('mailfleet.yaml:9 regions.dr.name: the DR region must differ')), lines.join('\n'));
  });

  it('never accepts an LDAP bind password without a file or environment variable', () => {
    const lines = issuesOf(`${BASE}directory:\n  kind: ldap\n  uris: [ldap://x]\n  baseDn: dc=x\n  bindDn: cn=svc\n`);
    assert.match(lines[0]!, /directory\.bindDn: bindDn needs bindPasswordFile or bindPasswordEnv/);
  });

  it('applies documented defaults', () => {
    const spec = parseSpec(BASE);
    assert.equal(spec.local.ports.smtp, 2525);
    assert.equal(spec.smtp.maxMessageSizeBytes, 25 * 1024 * 1024);
    assert.equal(spec.storage.kind, 'glusterfs');
    assert.equal(spec.directory.kind, 'static');
    assert.equal(spec.tiers.proxy.minNodes, 2);
  });

  it('loads every example and validates it against the published JSON Schema', () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    const validate = ajv.compile(jsonSchema());
    for (const f of readdirSync('examples').filter((x) => x.endsWith('.yaml') && x !== 'users.yaml')) {
      loadSpec(`examples/${f}`);
      const doc = yaml.load(readFileSync(`examples/${f}`, 'utf8'));
      assert.ok(validate(doc), `${f}: ${JSON.stringify(validate.errors)}`);
    }
  });

  it('the JSON Schema refuses what the loader refuses', () => {
    const ajv = new Ajv2020({ strict: false });
    const validate = ajv.compile(jsonSchema());
    assert.equal(validate(yaml.load(`${BASE}    colour: blue\n`)), false);
    assert.equal(validate(yaml.load(`${BASE}limits: { imap: { perUser: "ten" } }\n`)), false);
  });
});

describe('published schema', () => {
  it('schema/mailfleet.schema.json is current (regenerate with: mailfleet schema > schema/mailfleet.schema.json)', () => {
    assert.deepEqual(JSON.parse(readFileSync('schema/mailfleet.schema.json', 'utf8')), jsonSchema());
  });
});
