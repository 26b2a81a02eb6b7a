/**
 * mailfleet as a platform engineer installs it: `npm pack` (prepack compiles the library, bundles the
 * daemon with its manifest and the CLI), the tarball installed into an app that brings its own
 * aws-cdk-lib and constructs, and examples/consumer-app synthesized there with plain node, as the CDK
 * CLI runs it (CDK_OUTDIR set, no tsx). The pack runs in a copy of the sources, so the repository's own
 * dist/ is never rebuilt under other tests. Slow by nature (tsc + npm install + synths, and ~250 MB of
 * Node.js runtimes to gzip, unpack and hash): 6.8 minutes on the shared 2-core box at load 13–18, 4.6
 * before the runtimes shipped (docs/package.md). The runtimes come from ~/.cache/mailfleet (fetched from
 * the npm registry once per machine by scripts/fetch-node-runtime.mjs, which prepack runs).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, cpSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { NodeRuntimeManifest } from '../../constructs/shared/daemon-bundle.js';
import { isArm } from '../../constructs/shared/node-image.js';
import { buildPlan } from '../../lib/plan/index.js';
import { loadSpec } from '../../lib/spec/index.js';

const REPO = resolve(import.meta.dirname, '..', '..');
const CONSUMER = join(REPO, 'examples', 'consumer-app');
/** What `npm pack` needs from a checkout (package.json `files` picks from the build output). */
const SOURCES = ['bin', 'lib', 'constructs', 'engines', 'stacks', 'scripts', 'schema', 'package.json', 'tsconfig.json', 'tsconfig.build.json', 'cdk.json', 'README.md'];

const sha256 = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');
/** The Node.js runtime pinned in package.json (scripts/fetch-node-runtime.mjs fetches it at pack time). */
const PIN = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { nodeRuntime: { version: string; sha256: Record<'x64' | 'arm64', string> } }).nodeRuntime;

const versionOf = (pkg: string): string => (JSON.parse(readFileSync(join(REPO, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;

function sh(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 });
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, 0, `${what} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

type Resources = Record<string, { Type: string; Properties?: Record<string, unknown> }>;

/** Physical names a template fixes: two resources of one type with one name cannot both deploy. */
function physicalNames(resources: Resources): Map<string, string[]> {
  const field: Record<string, string> = {
    'AWS::SSM::Parameter': 'Name',
    'AWS::SecretsManager::Secret': 'Name',
    'AWS::Logs::LogGroup': 'LogGroupName',
    'AWS::IAM::Role': 'RoleName',
  };
  const out = new Map<string, string[]>();
  for (const [id, r] of Object.entries(resources)) {
    const f = field[r.Type];
    const name = f ? r.Properties?.[f] : undefined;
    if (name === undefined) continue;
    const key = `${r.Type} ${JSON.stringify(name)}`;
    out.set(key, [...(out.get(key) ?? []), id]);
  }
  return out;
}

// Longer than run-tests' 5-minute default: packing and installing alone take 2–7 minutes on a loaded box
// (the two Node.js runtimes add ~250 MB to gzip, unpack and hash).
describe('mailfleet as an npm package', { timeout: 1_200_000 }, () => {
  let work = '';
  let src = '';
  let app = '';
  let tarball = '';
  let files: string[] | undefined;
  /** The tarball's file list (listing ~100 MB of gzip takes seconds: once). */
  const listing = (): string[] => (files ??= ok(sh('tar', ['-tzf', tarball], work), 'tar').split('\n').filter(Boolean));

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'mailfleet-pack-'));
    src = join(work, 'src');
    for (const s of SOURCES) cpSync(join(REPO, s), join(src, s), { recursive: true });
    symlinkSync(realpathSync(join(REPO, 'node_modules')), join(src, 'node_modules'));
    ok(sh('npm', ['pack', '--pack-destination', work], src), 'npm pack');
    tarball = join(work, readdirSync(work).find((f) => f.endsWith('.tgz'))!);

    app = join(work, 'app');
    for (const f of ['main.js', 'cdk.json', 'mailfleet.yaml']) cpSync(join(CONSUMER, f), join(app, f));
    const pkg = JSON.parse(readFileSync(join(CONSUMER, 'package.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(app, 'package.json'), JSON.stringify({ ...pkg, dependencies: {} }));
    // The app's own aws-cdk-lib and constructs, at the repository's versions (from the npm cache when there).
    const deps = [tarball, `aws-cdk-lib@${versionOf('aws-cdk-lib')}`, `constructs@${versionOf('constructs')}`];
    ok(sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...deps], app), 'npm install');
  }, { timeout: 900_000 });

  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('ships the compiled library, the daemon bundle with its manifest and the CLI bundle, and no sources, tests or source maps', () => {
    const r = listing();
    for (const f of ['package/dist/constructs/index.js', 'package/dist/constructs/index.d.ts', 'package/dist/lib/plan/index.js', 'package/dist/lib/spec/index.d.ts', 'package/dist/mailfleetd.mjs', 'package/dist/mailfleetd.manifest.json', 'package/dist/cli/mailfleet.mjs'])
      assert.ok(r.includes(f), `tarball lacks ${f}`);
    assert.deepEqual(r.filter((f) => /\.ts$/.test(f) && !f.endsWith('.d.ts')), [], 'TypeScript sources in the tarball');
    assert.deepEqual(r.filter((f) => /(^package\/(test|bench|examples)\/)|\.map$/.test(f)), [], 'tests, benches, examples or maps in the tarball');
    const deps = Object.keys((JSON.parse(readFileSync(join(app, 'node_modules/mailfleet/package.json'), 'utf8')) as { dependencies: object }).dependencies);
    assert.deepEqual(deps.sort(), ['js-yaml', 'zod'], 'runtime dependencies of the library');
    assert.deepEqual(readdirSync(join(app, 'node_modules')).filter((d) => ['smtp-server', 'pino', 'commander', 'cdktf', '@pulumi'].includes(d)), []);
  });

  it('ships the pinned Node.js runtime for both arches (bin/node and LICENSE), each matching the manifest and the pin, and leaves none in the packed checkout', () => {
    const r = listing();
    const rt = r.filter((f) => f.startsWith('package/dist/node-runtime/')).sort();
    assert.deepEqual(rt, ['arm64/LICENSE', 'arm64/bin/node', 'manifest.json', 'x64/LICENSE', 'x64/bin/node'].map((f) => `package/dist/node-runtime/${f}`));
    // npm install extracted the tarball as it is: its files are the tarball's.
    const dir = join(app, 'node_modules/mailfleet/dist/node-runtime');
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as NodeRuntimeManifest;
    assert.equal(manifest.version, PIN.version);
    for (const arch of ['x64', 'arm64'] as const) {
      const entry = manifest.runtimes[arch]!;
      assert.equal(entry.sha256, PIN.sha256[arch], `${arch}: manifest vs package.json pin`);
      assert.equal(sha256(join(dir, entry.file)), entry.sha256, `${arch}: shipped binary vs manifest`);
      assert.equal(statSync(join(dir, entry.file)).mode & 0o111, 0o111, `${arch}: bin/node executable`);
    }
    assert.equal(existsSync(join(src, 'dist/node-runtime')), false, 'postpack left the runtimes in the checkout: every synth there would stage them');
  });

  it('GIVEN the tarball in an app with its own aws-cdk-lib WHEN examples/consumer-app runs under plain node THEN one aws-cdk-lib and constructs, two fleets and two edges in one stack, no physical name twice', () => {
    for (const pkg of ['aws-cdk-lib', 'constructs']) {
      const copies = ok(sh('npm', ['ls', pkg, '--all', '--parseable'], app), `npm ls ${pkg}`).split('\n').filter(Boolean);
      assert.deepEqual(copies, [join(realpathSync(app), 'node_modules', pkg)], `copies of ${pkg}`);
    }
    const out = join(work, 'cdk.out');
    const r = ok(sh(process.execPath, ['main.js'], app, { CDK_OUTDIR: out }), 'node main.js');
    assert.doesNotMatch(r, /Cannot find|tsx/);
    const t = JSON.parse(readFileSync(join(out, 'Mail.template.json'), 'utf8')) as { Resources: Resources };
    const count = (type: string) => Object.values(t.Resources).filter((x) => x.Type === type).length;
    assert.equal(count('AWS::AutoScaling::AutoScalingGroup'), 4, 'two mail groups and two HAProxy groups');
    assert.equal(count('AWS::ElasticLoadBalancingV2::LoadBalancer'), 2);
    const names = physicalNames(t.Resources);
    const twice = [...names].filter(([, ids]) => ids.length > 1);
    assert.deepEqual(twice, [], 'physical names used twice');
    for (const p of ['mail/blue', 'mail/green']) {
      assert.ok(names.has(`AWS::SSM::Parameter "/${p}/daemon-bundle"`), `${p}: daemon-bundle parameter`);
      assert.ok(names.has(`AWS::SecretsManager::Secret "${p}/admin-token"`), `${p}: admin token`);
    }
    // The daemon bundle shipped is the package's, byte for byte.
    const manifest = JSON.parse(readFileSync(join(app, 'node_modules/mailfleet/dist/mailfleetd.manifest.json'), 'utf8')) as { sha256: string };
    // The daemon asset is a folder (the bundle, its Node.js runtime when installed, SHA256SUMS): its bundle
    // is the one the manifest names, byte for byte, and SHA256SUMS says so too.
    const shipped = readdirSync(out).filter((f) => f.startsWith('asset.') && existsSync(join(out, f, 'mailfleetd.mjs')));
    assert.deepEqual(shipped.map((f) => createHash('sha256').update(readFileSync(join(out, f, 'mailfleetd.mjs'))).digest('hex')), [manifest.sha256]);
    assert.match(readFileSync(join(out, shipped[0]!, 'SHA256SUMS'), 'utf8'), new RegExp(`^${manifest.sha256}  mailfleetd\\.mjs$`, 'm'));
    // With the Node.js runtime of the nodes' arch (the example's Graviton m7g nodes: arm64, whatever machine
    // synthesizes), the one the package ships, byte for byte, executable.
    const arch = isArm(buildPlan(loadSpec(join(CONSUMER, 'mailfleet.yaml')).spec).sizing.mailNodes.instanceType) ? 'arm64' : 'x64';
    const runtimes = JSON.parse(readFileSync(join(app, 'node_modules/mailfleet/dist/node-runtime/manifest.json'), 'utf8')) as NodeRuntimeManifest;
    const node = join(out, shipped[0]!, 'node', 'bin', 'node');
    assert.equal(sha256(node), runtimes.runtimes[arch]!.sha256, `the ${arch} runtime`);
    assert.equal(statSync(node).mode & 0o111, 0o111);
    assert.match(readFileSync(join(out, shipped[0]!, 'SHA256SUMS'), 'utf8'), new RegExp(`^${runtimes.runtimes[arch]!.sha256}  node/bin/node$`, 'm'));
    assert.doesNotMatch(r, /no-node-runtime/);
  });

  it('GIVEN the installed package WHEN its daemon bundle was altered THEN synth fails, naming how to get a good one', () => {
    const bundle = join(app, 'node_modules/mailfleet/dist/mailfleetd.mjs');
    const original = readFileSync(bundle);
    try {
      appendFileSync(bundle, '\n// altered\n');
      const r = sh(process.execPath, ['main.js'], app, { CDK_OUTDIR: join(work, 'cdk.out.altered') });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /does not match its manifest.*reinstall mailfleet.*npm run build:daemon/s);
    } finally {
      writeFileSync(bundle, original);
    }
  });

  it('GIVEN the installed package WHEN the shipped Node.js runtime of the nodes\' arch was altered THEN synth fails, naming how to get a good one', () => {
    const arch = isArm(buildPlan(loadSpec(join(CONSUMER, 'mailfleet.yaml')).spec).sizing.mailNodes.instanceType) ? 'arm64' : 'x64';
    const node = join(app, `node_modules/mailfleet/dist/node-runtime/${arch}/bin/node`);
    const size = statSync(node).size;
    try {
      appendFileSync(node, '\n# altered\n');
      const r = sh(process.execPath, ['main.js'], app, { CDK_OUTDIR: join(work, 'cdk.out.altered-runtime') });
      assert.notEqual(r.status, 0, 'synth shipped an altered Node.js runtime');
      assert.match(r.stderr, new RegExp(`the Node\\.js ${arch} runtime .*does not match its manifest.*reinstall mailfleet.*npm run fetch-runtime`, 's'));
    } finally {
      truncateSync(node, size);
    }
  });

  it('runs the mailfleet bin from the compiled bundle with plain node', () => {
    const r = ok(sh(join(app, 'node_modules/.bin/mailfleet'), ['plan', '-c', 'mailfleet.yaml'], app), 'mailfleet plan');
    assert.match(r, /platform acme-mail: 2 domain\(s\)/);
    assert.match(readFileSync(join(app, 'node_modules/mailfleet/dist/cli/mailfleet.mjs'), 'utf8').slice(0, 40), /^#!\/usr\/bin\/env node\n/);
  });

  it('GIVEN an app without the optional cdktf WHEN it runs synth --engine terraform THEN the CLI names the packages and the install command (exit 2), after its progress lines', () => {
    const r = sh(join(app, 'node_modules/.bin/mailfleet'), ['synth', '-e', 'terraform', '-c', 'mailfleet.yaml'], app);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /the terraform engine needs cdktf and @cdktf\/provider-aws.*npm i -D cdktf@0\.21\.0 @cdktf\/provider-aws@20\.1\.0/s);
    assert.match(r.stderr, /loading .*mailfleet\.yaml and building the plan/);
    assert.doesNotMatch(r.stderr, /ERR_MODULE_NOT_FOUND|\n\s+at /);
  });

  it('GIVEN a checkout built by prepack WHEN a daemon source changes THEN synth refuses the stale bundle naming npm run build:daemon, and rebuilds it (saying so) only with mailfleet:buildDaemonBundle', () => {
    // A fleet alone: the bundle is checked when the fleet is constructed, before any synth.
    const script = (context: Record<string, unknown>) => `
      import { App, Stack } from 'aws-cdk-lib';
      import * as ec2 from 'aws-cdk-lib/aws-ec2';
      import * as route53 from 'aws-cdk-lib/aws-route53';
      import { MailServerFleet } from './dist/constructs/index.js';
      import { buildPlan } from './dist/lib/plan/index.js';
      import { loadSpec } from './dist/lib/spec/index.js';
      const app = new App({ context: ${JSON.stringify(context)} });
      const stack = new Stack(app, 'S', { env: { account: '111111111111', region: 'eu-west-1' } });
      const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', { vpcId: 'vpc-1', vpcCidrBlock: '10.0.0.0/16', availabilityZones: ['eu-west-1a'], privateSubnetIds: ['subnet-1'] });
      const privateZone = route53.HostedZone.fromHostedZoneAttributes(stack, 'Zone', { hostedZoneId: 'Z1', zoneName: 'acme-mail.internal' });
      const fleet = new MailServerFleet(stack, 'Fleet', { plan: buildPlan(loadSpec(${JSON.stringify(join(CONSUMER, 'mailfleet.yaml'))}).spec), vpc, privateZone });
      console.log('bundle', fleet.daemonBundle.assetHash);
    `;
    const run = (name: string, context: Record<string, unknown> = {}) => {
      writeFileSync(join(src, name), script(context));
      return sh(process.execPath, [name], src);
    };
    assert.match(ok(run('fresh.mjs'), 'synth with the bundle prepack built'), /^bundle /m);

    appendFileSync(join(src, 'lib/daemon/main.ts'), '\n// a daemon change after the build\n');
    const stale = run('stale.mjs');
    assert.notEqual(stale.status, 0, 'synth shipped a stale daemon bundle');
    assert.match(stale.stderr, /daemon bundle .*mailfleetd\.mjs is stale: daemon sources changed since it was built\. Rebuild it with `npm run build:daemon`/);

    const dev = run('dev.mjs', { 'mailfleet:buildDaemonBundle': true });
    assert.equal(dev.status, 0, dev.stderr);
    // Built, then checked again before the fleet took it.
    assert.match(dev.stderr, /is stale.*building it \(mailfleet:buildDaemonBundle is on\)/);
  });
});
