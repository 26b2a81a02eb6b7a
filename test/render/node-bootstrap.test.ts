import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { buildPlan, type Plan } from '../../lib/plan/index.js';
import { parseSpec, loadSpec } from '../../lib/spec/index.js';
import { RENDERERS, renderer } from '../../lib/render/index.js';
import { userData } from '../../lib/render/cloud-init.js';
import { nodeFiles } from '../../lib/render/node-files.js';
import { HEALTH_FAILURES_BEFORE_UNHEALTHY, NODE_ROLES, nodePath, secretNames, type NodeRole } from '../../lib/render/node-layout.js';
import { MAILFLEET_SCHEMA_PATH, slapdFiles } from '../../lib/render/slapd.js';
import { systemdUnits } from '../../lib/render/systemd.js';
import { cloudwatchAgentConfig } from '../../lib/render/cloudwatch-agent.js';
import { volumeCreateArgs } from '../../lib/render/gluster.js';
import { matchSnapshot } from './snapshot.js';
import { App } from 'aws-cdk-lib';
import { cdkJsonContext } from '../../constructs/shared/cdk-context.js';
import { platformModel } from '../../engines/platform.js';
import { s3TargetFromEnv } from '../../lib/journal/s3.js';
import { addPlatformStacks } from '../../stacks/app.js';

const single = buildPlan(loadSpec('examples/single-region.yaml').spec);
const primaryDr = buildPlan(loadSpec('examples/primary-dr.yaml').spec);

function variant(patch: Record<string, unknown>): Plan {
  const base = loadSpec('examples/single-region.yaml').spec;
  return buildPlan(parseSpec(JSON.stringify({ ...base, ...patch }), 'variant.yaml'));
}
// Also the static users file and relay credentials, so shellcheck sees those bootstrap lines too.
const efsPlan = variant({
  storage: { kind: 'efs' },
  directory: { kind: 'static' },
  smtp: { relay: { host: 'smtp.relay.example', usernameEnv: 'RELAY_USER', passwordEnv: 'RELAY_PASSWORD' } },
  audit: { enabled: true },
});

const tmp = mkdtempSync(join(tmpdir(), 'mailfleet-render-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function rolesOf(plan: Plan): NodeRole[] {
  return NODE_ROLES.filter((r) => {
    if (r === 'storage') return plan.storage.kind === 'glusterfs';
    if (r === 'ldap') return plan.directory.kind === 'ldap' && plan.directory.provision === 'openldap-pair';
    return true;
  });
}

/** Writes a role's bundle plus its user data as the node would see them; returns the script paths. */
function writeBundle(plan: Plan, role: NodeRole, label: string): string[] {
  const root = join(tmp, label, role);
  const files = [...nodeFiles(plan, role, 'primary'), { path: `user-data/${role}.sh`, content: userData(plan, role), executable: true }];
  const scripts: string[] = [];
  for (const f of files) {
    const p = join(root, f.path);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, f.content);
    // Shell scripts only; the Python ones are compiled by their own test below.
    if (f.executable && !f.content.startsWith('#!/usr/bin/python3')) scripts.push(p);
  }
  return scripts;
}

describe('node bootstrap renderers', () => {
  test('every renderer is registered once under its kind', () => {
    for (const kind of ['cloud-init', 'systemd', 'gluster', 'slapd', 'cloudwatch-agent'])
      assert.equal(RENDERERS.filter((r) => r.kind === kind).length, 1, kind);
  });

  for (const [label, plan] of [
    ['single-region', single],
    ['primary-dr', primaryDr],
    ['efs', efsPlan],
  ] as const) {
    test(`GIVEN ${label} WHEN every role bundle is rendered THEN every shell script passes shellcheck`, () => {
      const scripts = rolesOf(plan).flatMap((r) => writeBundle(plan, r, label));
      assert.ok(scripts.length >= 4);
      for (const s of scripts) {
        const r = spawnSync('shellcheck', ['-x', '-s', 'bash', s], { cwd: dirname(s), encoding: 'utf8' });
        assert.ok(!r.error, `shellcheck is not installed (apt-get install shellcheck): ${r.error?.message}`);
        assert.equal(r.status, 0, `${s}\n${r.stdout}${r.stderr}`);
      }
    });
  }

  test('GIVEN primary-dr WHEN every role bundle is rendered THEN every Python script compiles with the node\'s python3', () => {
    const py = rolesOf(primaryDr).flatMap((role) => nodeFiles(primaryDr, role, 'primary').filter((f) => f.content.startsWith('#!/usr/bin/python3')));
    assert.ok(py.length >= 1, 'the geo-replication watchdog is Python');
    for (const f of py) {
      const r = spawnSync('python3', ['-c', 'import sys; compile(sys.stdin.read(), sys.argv[1], "exec")', f.path], { input: f.content, encoding: 'utf8' });
      assert.equal(r.status, 0, `${f.path}\n${r.stderr}`);
    }
  });

  test('files the daemon reads come from their secrets to where the daemon resolves them (its config folder), readable by the mailfleet group only', () => {
    const mail = (plan: Plan) => nodeFiles(plan, 'mail', 'primary').find((f) => f.path === 'bootstrap/mail.sh')!.content;
    const names = secretNames(efsPlan);
    const users = mail(efsPlan);
    assert.match(users, new RegExp(`users_yaml=\\$\\(secret '?${names.staticUsers}'?\\)\n`));
    assert.match(users, /printf '%s\\n' "\$\{users_yaml\}" >'?\/etc\/mailfleet\/users\.yaml'?\n/);
    assert.match(users, /chgrp mailfleet '?\/etc\/mailfleet\/users\.yaml'?\nchmod 0640 /);
    assert.doesNotMatch(mail(single), /\/users\.yaml/, 'no users file with LDAP');
    const bind = mail(variant({ directory: { ...loadSpec('examples/single-region.yaml').spec.directory, bindPasswordEnv: undefined, bindPasswordFile: 'secrets/ldap-bind' } }));
    assert.match(bind, /ldap_bind=\$\(secret '?mailfleet\/[^ ]+\/ldap-bind'?\)\n/);
    assert.match(bind, />'?\/etc\/mailfleet\/secrets\/ldap-bind'?\n/);
    assert.match(bind, /install -d -m 0750 -o root -g mailfleet "\$\(dirname '?\/etc\/mailfleet\/secrets\/ldap-bind'?\)"/);
    assert.equal(nodePath('/run/keys/bind'), '/run/keys/bind', 'absolute paths stay');
    // Relay credentials: both env vars from the one JSON secret, into the daemon's env file.
    assert.match(users, new RegExp(`relay_json=\\$\\(secret '?${names.relay}'?\\)`));
    assert.match(users, /relay_username=\$\(json_field "\$\{relay_json\}" username\)/);
    assert.match(users, /printf '%s=%s\\n' '?RELAY_PASSWORD'? "\$\{relay_password\}"/);
    assert.doesNotMatch(mail(single), /RELAY_/);
  });

  test('user data fits the EC2 16 KiB limit and is the same text in both regions (nothing deploy-time inside)', () => {
    for (const role of NODE_ROLES) {
      const text = userData(primaryDr, role);
      assert.ok(Buffer.byteLength(text) < 16 * 1024, role);
      assert.doesNotMatch(text, /\$\{Token\[|arn:aws|s3:\/\/cdk-/);
      assert.equal(renderer('cloud-init')!.render(primaryDr, { role, region: 'dr' }), text);
    }
  });

  test('the Maildir mount comes before the daemon: mailfleetd requires the mount unit', () => {
    const units = systemdUnits(single);
    const daemon = units.find((u) => u.path === 'systemd/mailfleetd.service')!.content;
    assert.match(daemon, /^Requires=srv-mail\.mount$/m);
    assert.match(daemon, /^RequiresMountsFor=\/srv\/mail$/m);
    assert.match(daemon, /^After=.*srv-mail\.mount/m);
  });

  test('GlusterFS clients mount with backup volfile servers', () => {
    const mount = systemdUnits(single).find((u) => u.path === 'systemd/srv-mail.mount')!.content;
    assert.match(mount, /^What=gluster-1\.acme-mail\.internal:\/mail$/m);
    assert.match(mount, /backup-volfile-servers=gluster-2\.acme-mail\.internal:gluster-3\.acme-mail\.internal/);
  });

  test('EFS clients mount over NFS 4.1 through the private-zone name', () => {
    const mount = systemdUnits(efsPlan).find((u) => u.path === 'systemd/srv-mail.mount')!.content;
    assert.match(mount, /^What=efs\.acme-mail\.internal:\/$/m);
    assert.match(mount, /^Type=nfs4$/m);
  });

  test('the volume is replica 3 arbiter 1 over the storage hosts, or full replica 3 without the arbiter', () => {
    assert.deepEqual(volumeCreateArgs(single, 'primary').slice(0, 6), ['mail', 'replica', '3', 'arbiter', '1', 'transport']);
    const noArbiter = variant({ storage: { kind: 'glusterfs', nodes: 6, arbiter: false } });
    const args = volumeCreateArgs(noArbiter, 'primary');
    assert.deepEqual(args.slice(0, 3), ['mail', 'replica', '3']);
    assert.equal(args.filter((a) => a.includes(':/data/glusterfs/brick1/mail')).length, 6);
  });

  test('fails when storage nodes are not a multiple of the replica count', () => {
    // The spec check refuses this too; the renderer must not rely on it.
    const four = { ...single, storage: { ...single.storage, nodes: 4 } } as Plan;
    assert.throws(() => volumeCreateArgs(four, 'primary'), /storage\.nodes must be a multiple of 3/);
  });

  test('snapshots: slapd provider/consumer, systemd units, CloudWatch agent config', () => {
    for (const f of slapdFiles(single).filter((x) => !x.executable))
      matchSnapshot(`slapd-${f.path.replace(/\//g, '_')}`, f.content);
    for (const f of systemdUnits(single)) matchSnapshot(`systemd-${f.path.replace(/\//g, '_')}`, f.content);
    matchSnapshot('cloudwatch-mail.json', cloudwatchAgentConfig(single, 'mail'));
  });

  test('the rendered slapd.conf of provider and consumer pass slaptest (OpenLDAP 2.5)', () => {
    for (const role of ['provider', 'consumer'] as const) {
      const dir = join(tmp, `slapd-${role}`);
      mkdirSync(join(dir, 'db'), { recursive: true });
      writeFileSync(join(dir, 'rootpw.conf'), 'rootpw {SSHA}placeholder\n');
      writeFileSync(
        join(dir, 'syncrepl.conf'),
        role === 'consumer'
          ? 'syncrepl rid=001 provider=ldap://127.0.0.1:1 type=refreshAndPersist searchbase="dc=acme,dc=example" bindmethod=simple binddn="cn=replicator,dc=acme,dc=example" credentials=x\n'
          : '',
      );
      const files = slapdFiles(single);
      // The schema file the node installs where the conf includes it (ldap.sh), here in the temp dir.
      const script = files.find((f) => f.path === 'bootstrap/ldap.sh')!.content;
      assert.ok(script.includes(`install -m 0644 "\${MAILFLEET_FILES}/ldap/mailfleet.schema" ${MAILFLEET_SCHEMA_PATH}`), 'ldap.sh installs the schema');
      writeFileSync(join(dir, 'mailfleet.schema'), files.find((f) => f.path === 'ldap/mailfleet.schema')!.content);
      const conf = files
        .find((f) => f.path === `ldap/slapd-${role}.conf`)!
        .content.replace(`include ${MAILFLEET_SCHEMA_PATH}`, `include ${join(dir, 'mailfleet.schema')}`)
        .replace('/etc/ldap/mailfleet-rootpw.conf', join(dir, 'rootpw.conf'))
        .replace('/etc/ldap/mailfleet-syncrepl.conf', join(dir, 'syncrepl.conf'))
        .replace('/var/lib/ldap', join(dir, 'db'))
        .replace(/\/run\/slapd\//g, `${dir}/`);
      writeFileSync(join(dir, 'slapd.conf'), conf);
      const r = spawnSync('slaptest', ['-u', '-f', join(dir, 'slapd.conf')], { encoding: 'utf8' });
      assert.ok(!r.error, `slaptest is missing (apt-get install slapd): ${r.error?.message}`);
      assert.equal(r.status, 0, `${role}: ${r.stdout}${r.stderr}`);
      if (role === 'provider') {
        // A user entry with the attributes the backend reads (alias, quotas, cap, disabled) is valid
        // under the rendered provider's schema: slapadd's dry run checks it against the schema.
        const base = 'dc=acme,dc=example';
        assert.ok(conf.includes(`suffix "${base}"`), 'the example\'s suffix');
        const ldif = `dn: ${base}\nobjectClass: dcObject\nobjectClass: organization\ndc: acme\no: acme\n\n` +
          `dn: uid=bob,${base}\nobjectClass: inetOrgPerson\nobjectClass: mailfleetUser\nuid: bob\ncn: Bob\nsn: B\nmail: bob@acme.example\n` +
          'mailAlternateAddress: sales@acme.example\nmailQuota: 1048576\nmailfleetQuotaMessages: 5000\nmailfleetMaxConnections: imap=3\nmailfleetDisabled: FALSE\n';
        writeFileSync(join(dir, 'users.ldif'), ldif);
        const add = spawnSync('slapadd', ['-u', '-f', join(dir, 'slapd.conf'), '-l', join(dir, 'users.ldif')], { encoding: 'utf8' });
        assert.equal(add.status, 0, `slapadd -u: ${add.stdout}${add.stderr}`);
      }
    }
  });
});

describe('directory names: the daemon config on mail nodes names what the engines create', () => {
  const hostsOf = (plan: Plan, region: 'primary' | 'dr') => {
    const cfg = JSON.parse(nodeFiles(plan, 'mail', region).find((f) => f.path === 'mailfleetd.json')!.content) as {
      directory: { kind: string; uris?: string[] };
    };
    return (cfg.directory.uris ?? []).map((u) => new URL(u).hostname);
  };

  test('GIVEN an openldap-pair spec WHEN the mail node files are rendered THEN every LDAP host in mailfleetd.json is a record the engine model creates (primary and DR)', () => {
    const base = loadSpec('examples/primary-dr.yaml').spec;
    const pairDr = buildPlan(parseSpec(JSON.stringify({ ...base, directory: loadSpec('examples/single-region.yaml').spec.directory }), 'pair-dr.yaml'));
    const model = platformModel(pairDr);
    assert.equal(model.regions.length, 2);
    for (const region of model.regions) {
      const names = new Set(model.regions.flatMap((r) => r.privateRecords.filter((rec) => r === region || rec.zone === 'region').map((rec) => rec.name)));
      const hosts = hostsOf(pairDr, region.role);
      assert.ok(hosts.length >= 2, `${region.role}: ${hosts.join(', ')}`);
      for (const h of hosts) assert.ok(names.has(h), `${region.role}: ${h} is not a name the engines create (${[...names].filter((n) => n.startsWith('ldap')).join(', ')})`);
    }
  });

  test('GIVEN the single-region example WHEN synthesized with CDK THEN the LDAP hosts in mailfleetd.json are the A records of the slapd nodes in the template', () => {
    const app = new App({ context: { ...cdkJsonContext(), 'aws:cdk:disable-stack-trace': true }, outdir: mkdtempSync(join(tmp, 'cdk-')) });
    addPlatformStacks(app, single);
    const records = new Set<string>();
    for (const stack of app.synth().stacks) {
      const resources = (stack.template as { Resources?: Record<string, { Type: string; Properties: { Name?: unknown } }> }).Resources ?? {};
      for (const r of Object.values(resources))
        if (r.Type === 'AWS::Route53::RecordSet' && typeof r.Properties.Name === 'string') records.add(r.Properties.Name.replace(/\.$/, ''));
    }
    for (const h of hostsOf(single, 'primary')) assert.ok(records.has(h), `${h} has no record in the template (${[...records].join(', ')})`);
  });
});

describe('secrets on nodes: a failed or empty read stops the bootstrap', () => {
  /** Runs bash with the rendered common.sh sourced, IMDS and the AWS CLI answered by stubs on PATH. */
  function withCommon(plan: Plan, script: string, secretValue: string | null): { status: number | null; stdout: string; stderr: string } {
    const dir = mkdtempSync(join(tmp, 'secrets-'));
    const common = nodeFiles(plan, 'mail', 'primary').find((f) => f.path === 'bootstrap/common.sh')!.content;
    writeFileSync(join(dir, 'common.sh'), common);
    mkdirSync(join(dir, 'bin'));
    writeFileSync(join(dir, 'bin', 'curl'), '#!/bin/sh\necho stub-imds-value\n', { mode: 0o755 });
    const aws = secretValue === null ? '#!/bin/sh\necho "An error occurred (AccessDeniedException)" >&2\nexit 254\n' : `#!/bin/sh\nprintf '%s\\n' '${secretValue}'\n`;
    writeFileSync(join(dir, 'bin', 'aws'), aws, { mode: 0o755 });
    const r = spawnSync('bash', ['-c', `. ${dir}/common.sh\n${script}`], { encoding: 'utf8', env: { PATH: `${dir}/bin:/usr/bin:/bin` } });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  test('GIVEN Secrets Manager refuses WHEN the bootstrap reads a secret THEN it stops before writing anything', () => {
    const r = withCommon(single, 'v=$(secret mailfleet/x/admin-token)\necho "written=[$v]"', null);
    assert.notEqual(r.status, 0);
    assert.doesNotMatch(r.stdout, /written=/);
    assert.match(r.stderr, /cannot read secret mailfleet\/x\/admin-token/);
  });

  test('GIVEN an empty secret WHEN the bootstrap reads it THEN it stops (never an empty password or token on the node)', () => {
    const r = withCommon(single, 'v=$(secret mailfleet/x/ldap-bind)\necho "written=[$v]"', '');
    assert.notEqual(r.status, 0);
    assert.doesNotMatch(r.stdout, /written=/);
    assert.match(r.stderr, /secret mailfleet\/x\/ldap-bind is empty/);
  });

  test('no role script passes a secret read straight into another command (where a failure would go unseen)', () => {
    for (const plan of [single, efsPlan])
      for (const role of rolesOf(plan))
        for (const f of nodeFiles(plan, role, 'primary').filter((x) => x.executable))
          assert.doesNotMatch(f.content, /"\$\(secret /, `${role}: ${f.path}`);
  });

  test('GIVEN a TLS secret without a certificate WHEN the mail node boots THEN it generates a self-signed one for the hostname, never an empty file', () => {
    const mail = nodeFiles(single, 'mail', 'primary').find((f) => f.path === 'bootstrap/mail.sh')!.content;
    assert.match(mail, /openssl req -x509 [^\n]*-subj '\/CN=mx\.acme\.example'/);
    assert.match(mail, /openssl x509 -noout -in \/etc\/mailfleet\/tls\/cert\.pem/);
  });
});

describe('audit archive on mail nodes: each region ships to its own bucket (issue 22)', () => {
  const auditDr = buildPlan(parseSpec(JSON.stringify({ ...loadSpec('examples/primary-dr.yaml').spec, audit: { enabled: true } }), 'audit-dr.yaml'));
  type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;

  test('GIVEN audit on in primary and DR WHEN synthesized with CDK and the rendered mail.sh reads its parameter THEN the daemon\'s environment names that region\'s Object Lock bucket and region', () => {
    const app = new App({ context: { ...cdkJsonContext(), 'aws:cdk:disable-stack-trace': true }, outdir: mkdtempSync(join(tmp, 'cdk-audit-')) });
    addPlatformStacks(app, auditDr);
    const stacks = app.synth().stacks;
    assert.equal(stacks.length, 2);
    const buckets = new Set<string>();
    for (const stack of stacks) {
      const region = stack.environment.region;
      const resources = (stack.template as { Resources: Resources }).Resources;
      // What the stand-in SSM would answer: each parameter's value, a bucket Ref as the bucket's logical id.
      const params: Record<string, string> = {};
      for (const r of Object.values(resources))
        if (r.Type === 'AWS::SSM::Parameter' && typeof r.Properties.Name === 'string') {
          const v = r.Properties.Value as { Ref?: string } | string;
          params[r.Properties.Name] = typeof v === 'string' ? v : (v.Ref ?? 'unresolved');
        }
      const dir = mkdtempSync(join(tmp, 'audit-env-'));
      const files = nodeFiles(auditDr, 'mail', 'primary');
      writeFileSync(join(dir, 'common.sh'), files.find((f) => f.path === 'bootstrap/common.sh')!.content);
      const mail = files.find((f) => f.path === 'bootstrap/mail.sh')!.content;
      const block = /# >>> audit archive[^\n]*\n[\s\S]*?# <<< audit archive\n/.exec(mail)?.[0];
      const envLine = /^ *printf 'MAILFLEET_AUDIT_BUCKET=.*$/m.exec(mail)?.[0];
      assert.ok(block && envLine, 'mail.sh reads the archive bucket and writes it into the daemon environment');
      writeFileSync(join(dir, 'params.json'), JSON.stringify(params));
      mkdirSync(join(dir, 'bin'));
      writeFileSync(join(dir, 'bin', 'curl'), `#!/bin/sh\ncase "$*" in *placement/region*) echo ${region} ;; *) echo stub ;; esac\n`, { mode: 0o755 });
      // aws ssm get-parameter --name X … answered from the template's parameters (unknown names fail as SSM does).
      writeFileSync(
        join(dir, 'bin', 'aws'),
        `#!/usr/bin/python3\nimport json,sys\np=json.load(open('${dir}/params.json'))\nn=sys.argv[sys.argv.index('--name')+1]\nif n not in p: sys.exit('ParameterNotFound '+n)\nprint(p[n])\n`,
        { mode: 0o755 },
      );
      const r = spawnSync('bash', ['-c', `set -euo pipefail\n. ${dir}/common.sh\n${block}{\n${envLine}\n} >${dir}/env`], { encoding: 'utf8', env: { PATH: `${dir}/bin:/usr/bin:/bin` } });
      assert.equal(r.status, 0, r.stderr);
      const env = Object.fromEntries(
        readFileSync(join(dir, 'env'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      assert.equal(env.AWS_REGION, region);
      const target = s3TargetFromEnv(env);
      const bucket = resources[target?.bucket ?? ''];
      assert.equal(bucket?.Type, 'AWS::S3::Bucket', `${region}: ${target?.bucket} is a bucket of this region's stack`);
      assert.equal((bucket!.Properties.ObjectLockConfiguration as { ObjectLockEnabled: string }).ObjectLockEnabled, 'Enabled');
      buckets.add(`${stack.stackName}/${target!.bucket}`);
    }
    assert.equal(buckets.size, 2, 'one archive per region');
  });

  test('GIVEN audit off WHEN mail.sh is rendered THEN it neither reads an archive parameter nor sets a bucket', () => {
    const mail = nodeFiles(single, 'mail', 'primary').find((f) => f.path === 'bootstrap/mail.sh')!.content;
    assert.doesNotMatch(mail, /audit-bucket|MAILFLEET_AUDIT_BUCKET/);
  });
});

describe('mail node health: a node without storage or daemon gets replaced (issue 17)', () => {
  test(`GIVEN the store is not mounted WHEN the health timer's job runs ${HEALTH_FAILURES_BEFORE_UNHEALTHY} times THEN the last run marks the instance Unhealthy in its group, not deferred by the grace period`, () => {
    const dir = mkdtempSync(join(tmp, 'health-'));
    for (const f of nodeFiles(single, 'mail', 'primary').filter((x) => x.path.startsWith('bootstrap/'))) {
      mkdirSync(join(dir, 'bootstrap'), { recursive: true });
      writeFileSync(join(dir, f.path), f.content, { mode: 0o755 });
    }
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    const stub = (name: string, body: string) => writeFileSync(join(bin, name), `#!/bin/bash\n${body}\n`, { mode: 0o755 });
    stub('curl', 'case "$*" in *api/token*) echo tok ;; *instance-id*) echo i-0fleet ;; *) echo stub ;; esac');
    stub('mountpoint', 'exit 1');
    stub('aws', `echo "$*" >>${dir}/aws.log`);
    const state = join(dir, 'failures');
    const watch = readFileSync(join(dir, 'bootstrap/health-watch.sh'), 'utf8').replace('/run/mailfleet-health-failures', state);
    writeFileSync(join(dir, 'bootstrap/health-watch.sh'), watch, { mode: 0o755 });
    const calls: string[] = [];
    for (let i = 1; i <= HEALTH_FAILURES_BEFORE_UNHEALTHY; i++) {
      const r = spawnSync('bash', [join(dir, 'bootstrap/health-watch.sh')], { encoding: 'utf8', env: { PATH: `${bin}:/usr/bin:/bin` } });
      assert.notEqual(r.status, 0, `run ${i} reports the failure`);
      calls.push(existsSync(join(dir, 'aws.log')) ? readFileSync(join(dir, 'aws.log'), 'utf8') : '');
    }
    assert.equal(calls[HEALTH_FAILURES_BEFORE_UNHEALTHY - 2], '', 'no report before the limit');
    const last = calls[HEALTH_FAILURES_BEFORE_UNHEALTHY - 1]!.trim();
    assert.match(last, /^autoscaling set-instance-health --instance-id i-0fleet --health-status Unhealthy$/);
  });
});

describe('storage nodes: the brick volume', () => {
  /** Runs the rendered storage.sh with every command that touches the machine answered by a stub on PATH. */
  function storageBoot(opts: { brickMounted: boolean }): { status: number | null; stdout: string; stderr: string } {
    const dir = mkdtempSync(join(tmp, 'storage-'));
    for (const f of nodeFiles(single, 'storage', 'primary')) {
      const p = join(dir, f.path);
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, f.content, { mode: f.executable ? 0o755 : 0o644 });
    }
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    const stub = (name: string, body: string) => writeFileSync(join(bin, name), `#!/bin/bash\n${body}\n`, { mode: 0o755 });
    stub('curl', 'case "$*" in *api/token*) echo tok ;; *MailfleetNodeIndex*) echo 2 ;; *placement/region*) echo eu-west-1 ;; *amazoncloudwatch*) exit 22 ;; *) echo stub ;; esac');
    for (const name of ['apt-get', 'hostnamectl', 'systemctl', 'install', 'mount', 'mkfs.xfs', 'blkid']) stub(name, 'exit 0');
    stub('dpkg', 'echo amd64');
    stub('mountpoint', opts.brickMounted ? 'exit 0' : 'exit 1');
    // A container's root: an overlay with no block device under it (what lsblk says about it).
    stub('findmnt', 'echo overlay');
    stub('lsblk', 'echo "lsblk: overlay: not a block device" >&2; exit 32');
    const r = spawnSync('bash', [join(dir, 'bootstrap', 'storage.sh')], { encoding: 'utf8', env: { PATH: `${bin}:/usr/bin:/bin` }, timeout: 20_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  test('GIVEN the brick volume is mounted already (a reboot, or the fleet harness\'s volume) WHEN storage.sh runs THEN it uses it without looking for a disk', () => {
    const r = storageBoot({ brickMounted: true });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /storage node 2 ready/);
  });

  test('GIVEN no brick volume and no second disk WHEN storage.sh runs THEN it stops loudly', () => {
    const r = storageBoot({ brickMounted: false });
    assert.notEqual(r.status, 0);
    assert.doesNotMatch(r.stdout, /ready/);
  });
});
