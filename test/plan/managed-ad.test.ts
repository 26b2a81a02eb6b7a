/**
 * AWS Managed AD in the spec, the plan and the rendered node files: the service account lives in the
 * customer OU, cloud daemons name the domain the engines forward, and their binds say how they are protected.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runInNewContext } from 'node:vm';
import { loadSpec, parseSpec } from '../../lib/spec/index.js';
import { checkSpec } from '../../lib/spec/check.js';
import { buildPlan } from '../../lib/plan/index.js';
import { daemonConfigRenderer } from '../../lib/render/daemon-config.js';
import { nodeFiles } from '../../lib/render/node-files.js';
import { BIND_ACCOUNT_HANDLER } from '../../lib/render/bind-account.js';
import { secretsReadBy } from '../../lib/plan/node-access.js';
import { secretNames } from '../../lib/render/node-layout.js';

const base = () => loadSpec('examples/primary-dr.yaml').spec;
const withDirectory = (patch: Record<string, unknown>) => {
  const spec = base();
  return parseSpec(JSON.stringify({ ...spec, directory: { ...spec.directory, ...patch } }), 'variant.yaml');
};
const daemonDirectory = (patch: Record<string, unknown> = {}, region?: 'dr') => {
  const plan = buildPlan(withDirectory(patch));
  const text = daemonConfigRenderer.render(plan, { region });
  return JSON.parse(text).directory as Record<string, unknown>;
};

describe('managed AD: the service account in the customer OU', () => {
  it('fails when bindDn names an OU AWS Managed AD allows no objects in (the old example)', () => {
    assert.throws(
      () => withDirectory({ bindDn: 'CN=mailfleet,OU=Service Accounts,DC=globex,DC=example' }),
      /directory\.bindDn: managed-ad: AWS Managed AD allows objects only under OU=GLOBEX,DC=globex,DC=example .*CN=mailfleet-svc,OU=Users,OU=GLOBEX,DC=globex,DC=example/,
    );
  });

  it('the plan derives the DN the engines create when the spec omits bindDn', () => {
    const plan = buildPlan(withDirectory({ bindDn: undefined }));
    assert.equal(plan.directory.kind === 'ldap' && plan.directory.bindDn, 'CN=mailfleet-svc,OU=Users,OU=GLOBEX,DC=globex,DC=example');
    assert.deepEqual(checkSpec(withDirectory({ bindDn: undefined })), []);
  });

  it('fails when tls is given for a directory the engines do not create as managed AD', () => {
    assert.throws(() => withDirectory({ provision: 'external', tls: 'ldaps' }), /directory\.tls: tls applies to provision: managed-ad/);
  });
});

describe('managed AD: what cloud daemons are told', () => {
  it('names the domain the Resolver rule forwards, over LDAPS verified against the ldap-ca bundle (default)', () => {
    for (const region of [undefined, 'dr'] as const) {
      const d = daemonDirectory({ tls: undefined }, region);
      assert.deepEqual(d.uris, ['ldaps://globex.example']);
      assert.equal(d.startTls, false);
      assert.equal(d.caFile, 'ldap-ca.pem');
      assert.equal(d.bindDn, 'CN=mailfleet-svc,OU=Users,OU=GLOBEX,DC=globex,DC=example');
    }
  });

  it('starttls: ldap:// upgraded with StartTLS, same CA; none-in-vpc: plaintext, no CA', () => {
    const st = daemonDirectory({ tls: 'starttls' });
    assert.deepEqual([st.uris, st.startTls, st.caFile], [['ldap://globex.example'], true, 'ldap-ca.pem']);
    const plain = daemonDirectory({ tls: 'none-in-vpc' });
    assert.deepEqual([plain.uris, plain.startTls, plain.caFile], [['ldap://globex.example'], false, undefined]);
  });

  it('mail nodes read the CA bundle from its secret and write the file the daemon verifies with', () => {
    const plan = buildPlan(base());
    assert.ok(secretsReadBy(plan, 'mail').includes(secretNames(plan).ldapCa));
    const mail = nodeFiles(plan, 'mail', 'primary').find((f) => f.path === 'bootstrap/mail.sh')!.content;
    assert.match(mail, /ldap_ca_json=\$\(secret 'mailfleet\/globex-mail\/ldap-ca'\)/);
    assert.match(mail, />'\/etc\/mailfleet\/ldap-ca\.pem'/);
    const plain = nodeFiles(buildPlan(withDirectory({ tls: 'none-in-vpc' })), 'mail', 'primary').find((f) => f.path === 'bootstrap/mail.sh')!.content;
    assert.doesNotMatch(plain, /ldap-ca/);
  });
});

describe('managed AD: the bind account function', () => {
  type Call = { client: string; command: string; input: Record<string, unknown> };
  /** AWS SDK stand-ins at the API boundary: record each command, answer as the services do. */
  function run(event: unknown, opts: { exists?: boolean; access?: string } = {}) {
    const calls: Call[] = [];
    const logs: string[] = [];
    let access = opts.access ?? 'Disabled';
    const client = (name: string) =>
      class {
        async send(cmd: { name: string; input: Record<string, unknown> }) {
          calls.push({ client: name, command: cmd.name, input: cmd.input });
          if (cmd.name === 'DescribeDirectoryDataAccessCommand') return { DataAccessStatus: access };
          if (cmd.name === 'EnableDirectoryDataAccessCommand') access = 'Enabled';
          if (cmd.name === 'CreateUserCommand' && opts.exists) throw Object.assign(new Error('exists'), { name: 'ConflictException' });
          if (cmd.name === 'GetSecretValueCommand') return { SecretString: 'S3cret-bind-PASSWORD' };
          return {};
        }
      };
    const command = (name: string) =>
      class {
        name = name;
        constructor(public input: Record<string, unknown>) {}
      };
    const modules: Record<string, Record<string, unknown>> = {
      '@aws-sdk/client-secrets-manager': { SecretsManagerClient: client('sm'), GetSecretValueCommand: command('GetSecretValueCommand') },
      '@aws-sdk/client-directory-service': {
        DirectoryServiceClient: client('ds'),
        DescribeDirectoryDataAccessCommand: command('DescribeDirectoryDataAccessCommand'),
        EnableDirectoryDataAccessCommand: command('EnableDirectoryDataAccessCommand'),
        ResetUserPasswordCommand: command('ResetUserPasswordCommand'),
      },
      '@aws-sdk/client-directory-service-data': { DirectoryServiceDataClient: client('data'), CreateUserCommand: command('CreateUserCommand') },
    };
    const exports: Record<string, (e: unknown, o?: unknown) => Promise<unknown>> = {};
    runInNewContext(BIND_ACCOUNT_HANDLER, { require: (m: string) => modules[m], exports, console: { log: (s: string) => logs.push(s) }, setTimeout });
    return { calls, logs, result: exports.handler!(event) };
  }
  // The handler runs in its own realm: compare plain copies.
  const plain = (v: unknown) => JSON.parse(JSON.stringify(v)) as unknown;
  const props = { DirectoryId: 'd-123', SamAccountName: 'mailfleet-svc', SecretArn: 'arn:aws:secretsmanager:eu-west-1:2:secret:x-AbCdEf' };

  it('enables data access, creates the user, reads the secret by ARN and sets it as the password; nothing logs the password', async () => {
    const r = run({ RequestType: 'Create', ResourceProperties: props });
    assert.deepEqual(plain(await r.result), { PhysicalResourceId: 'd-123/mailfleet-svc', Data: { SamAccountName: 'mailfleet-svc' } });
    assert.deepEqual(
      r.calls.map((c) => c.command),
      ['DescribeDirectoryDataAccessCommand', 'EnableDirectoryDataAccessCommand', 'DescribeDirectoryDataAccessCommand', 'CreateUserCommand', 'GetSecretValueCommand', 'ResetUserPasswordCommand'],
    );
    assert.deepEqual(plain(r.calls.find((c) => c.command === 'CreateUserCommand')!.input), { DirectoryId: 'd-123', SAMAccountName: 'mailfleet-svc' });
    assert.deepEqual(plain(r.calls.find((c) => c.command === 'GetSecretValueCommand')!.input), { SecretId: props.SecretArn });
    assert.deepEqual(plain(r.calls.find((c) => c.command === 'ResetUserPasswordCommand')!.input), { DirectoryId: 'd-123', UserName: 'mailfleet-svc', NewPassword: 'S3cret-bind-PASSWORD' });
    assert.ok(!r.logs.join('\n').includes('S3cret-bind-PASSWORD'));
  });

  it('a plain invocation (Terraform, Pulumi) with an existing account only resets the password', async () => {
    const r = run(props, { exists: true, access: 'Enabled' });
    await r.result;
    assert.deepEqual(r.calls.map((c) => c.command), ['DescribeDirectoryDataAccessCommand', 'CreateUserCommand', 'GetSecretValueCommand', 'ResetUserPasswordCommand']);
  });

  it('a CloudFormation Delete leaves the account to the directory', async () => {
    const r = run({ RequestType: 'Delete', PhysicalResourceId: 'd-123/mailfleet-svc', ResourceProperties: props });
    assert.deepEqual(plain(await r.result), { PhysicalResourceId: 'd-123/mailfleet-svc' });
    assert.equal(r.calls.length, 0);
  });
});
