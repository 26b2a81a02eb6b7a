/**
 * The mail tier's membership script (bootstrap/register.sh), run as rendered against an AWS API stand-in
 * (test/render/fixtures/route53-asg-standin.py: IMDSv2, Route 53 with its batch rules, Auto Scaling, EC2)
 * inside a private network and mount namespace. What it must give HAProxy's server-template: every live
 * mail node in one record (a multivalue record answers at most 8), nobody lost when nodes register at
 * once, and no address of an instance that is gone.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildPlan } from '../../lib/plan/index.js';
import { nodeFiles } from '../../lib/render/node-files.js';
import { mailNodesHost } from '../../lib/render/node-layout.js';
import { loadSpec } from '../../lib/spec/index.js';

/**
 * The stand-in is reached through AWS_ENDPOINT_URL, which botocore honours from 1.31 on (Debian 12's
 * python3-botocore is 1.29 and would call the real Route 53). Nodes run the script on Debian's awscli
 * against the real endpoints; the fleet harness runs it that way (stand-ins by host name). Here the
 * python3 on PATH must have a botocore that honours the variable: said plainly if it has not.
 */
const botocore = spawnSync('python3', ['-c', 'import botocore; print(botocore.__version__)'], { encoding: 'utf8' });
const [major = 0, minor = 0] = botocore.stdout.trim().split('.').map(Number);
if (botocore.status !== 0 || major < 1 || (major === 1 && minor < 31))
  throw new Error(`register-script test: the python3 on PATH needs botocore >= 1.31 (AWS_ENDPOINT_URL); found ${botocore.stdout.trim() || botocore.stderr.trim().split('\n').pop()}`);

const plan = buildPlan(loadSpec('examples/single-region.yaml').spec);
const NAME = mailNodesHost(plan);
const STANDIN = resolve('test/render/fixtures/route53-asg-standin.py');
const root = mkdtempSync(join(tmpdir(), 'mf-register-'));
after(() => rmSync(root, { recursive: true, force: true }));
const files = nodeFiles(plan, 'mail', 'primary');
for (const f of ['bootstrap/register.sh', 'bootstrap/common.sh']) writeFileSync(join(root, f.split('/')[1]!), files.find((x) => x.path === f)!.content, { mode: 0o755 });

interface RecordSet { Name: string; Type: string; TTL: number; Values: string[]; SetIdentifier?: string }
interface State {
  records: RecordSet[];
  nextLocalIps: string[];
  instances: { id: string; ip: string; state: string }[];
  /** The instance id IMDS gives (default i-test). */
  instanceId?: string;
  delay?: number;
  asgFails?: boolean;
  /** Accepted change batches, and Route 53 calls (reads and changes). */
  changes?: number;
  calls?: number;
}

let n = 0;
/** Runs `commands` (bash, register.sh as $R) in a fresh namespace with the stand-in at `initial`; returns its end state. */
function scenario(initial: State, commands: string): { state: State; stderr: string; code: number | null } {
  const dir = join(root, `s${++n}`);
  mkdirSync(join(dir, 'u'), { recursive: true });
  mkdirSync(join(dir, 'w'));
  writeFileSync(join(dir, 'state.json'), JSON.stringify(initial));
  const script = `set -e
mount --make-rprivate /
ip link set lo up
ip addr add 169.254.169.254/32 dev lo
# /etc/mailfleet exists only in this namespace's view (an overlay over the host's /etc).
mount -t overlay overlay -o lowerdir=/etc,upperdir=${dir}/u,workdir=${dir}/w /etc
mkdir -p /etc/mailfleet && echo ZFLEET >/etc/mailfleet/private-zone-id
python3 ${STANDIN} ${dir}/state.json >${dir}/standin.log 2>&1 &
standin=$!
trap 'kill $standin 2>/dev/null' EXIT
for i in $(seq 100); do curl -s -m 2 -o /dev/null -X PUT http://169.254.169.254/latest/api/token && break; sleep 0.1; done
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_ENDPOINT_URL=http://169.254.169.254 AWS_EC2_METADATA_DISABLED=true
R=${root}/register.sh
set +e
${commands}`;
  // A pid namespace too: whatever the scenario leaves running dies with it (an orphan holding the output
  // pipe kept spawnSync waiting until its timeout).
  const r = spawnSync('unshare', ['--net', '--mount', '--pid', '--fork', 'bash', '-c', script], { encoding: 'utf8', timeout: 120_000 });
  return { state: JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as State, stderr: r.stderr, code: r.status };
}

const ips = (k: number, base = 10) => Array.from({ length: k }, (_, i) => `10.0.${base}.${i + 1}`);
const valuesOf = (s: State) => s.records.filter((r) => r.Name.replace(/\.$/, '') === NAME && r.Type === 'A').flatMap((r) => r.Values).sort();

describe('register.sh: the mail tier in one record (rendered script, Route 53 stand-in)', () => {
  test('GIVEN an empty tier WHEN 12 nodes register at once (overlapping read-modify-writes) THEN one simple record holds all 12 addresses', () => {
    const joining = ips(12);
    const t0 = performance.now();
    const r = scenario(
      { records: [], nextLocalIps: [...joining], instances: [], delay: 0.1 },
      `pids=(); for i in $(seq 12); do "$R" UPSERT & pids+=($!); done; rc=0; for j in "\${pids[@]}"; do wait "$j" || rc=1; done; exit $rc`,
    );
    const seconds = (performance.now() - t0) / 1000;
    assert.equal(r.code, 0, r.stderr);
    const sets = r.state.records.filter((x) => x.Name.replace(/\.$/, '') === NAME);
    assert.equal(sets.length, 1, `one record set, not ${sets.length}`);
    assert.equal(sets[0]!.SetIdentifier, undefined, 'simple routing, not multivalue (8 answers at most)');
    assert.deepEqual(valuesOf(r.state), [...joining].sort());
    assert.match(r.stderr, /attempt \d+: InvalidChangeBatch/, 'the writes did overlap (a batch on a changed set was refused and retried)');
    const retries = (r.stderr.match(/attempt \d+:/g) ?? []).length;
    console.log(`12 concurrent registrations: ${seconds.toFixed(1)} s, ${r.state.calls} Route 53 calls, ${retries} retried batches`);
  });

  test('GIVEN per-node multivalue records of older nodes WHEN a new node registers THEN they become one simple record with every address', () => {
    const old = ips(3, 20);
    const records = old.map((ip, i) => ({ Name: `${NAME}.`, Type: 'A', TTL: 10, Values: [ip], SetIdentifier: `i-old${i}` }));
    const r = scenario({ records, nextLocalIps: ['10.0.30.1'], instances: [] }, '"$R" UPSERT');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.state.records.map((x) => x.SetIdentifier), [undefined]);
    assert.deepEqual(valuesOf(r.state), [...old, '10.0.30.1'].sort());
  });

  test('GIVEN a record of 3 WHEN one node stops (DELETE) THEN only its address goes; the last one leaving removes the record', () => {
    const three = ips(3);
    const r = scenario({ records: [{ Name: NAME, Type: 'A', TTL: 10, Values: three }], nextLocalIps: ['10.0.10.2'], instances: [] }, '"$R" DELETE');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(valuesOf(r.state), ['10.0.10.1', '10.0.10.3']);
    const last = scenario({ records: [{ Name: NAME, Type: 'A', TTL: 10, Values: ['10.0.10.1'] }], nextLocalIps: ['10.0.10.1'], instances: [] }, '"$R" DELETE');
    assert.equal(last.code, 0, last.stderr);
    assert.deepEqual(last.state.records, []);
  });

  test('GIVEN two members whose instances are gone (killed, no ExecStop) WHEN a node reconciles THEN exactly those are dropped', () => {
    const five = ips(5);
    const instances = [
      { id: 'i-1', ip: five[0]!, state: 'InService' },
      { id: 'i-2', ip: five[1]!, state: 'InService' },
      { id: 'i-3', ip: five[2]!, state: 'InService' },
      { id: 'i-4', ip: five[3]!, state: 'Terminating:Wait' },
      { id: 'i-9', ip: '10.0.99.9', state: 'Pending:Wait' },
    ];
    const r = scenario({ records: [{ Name: NAME, Type: 'A', TTL: 10, Values: five }], nextLocalIps: [five[2]!], instanceId: 'i-3', instances }, '"$R" RECONCILE');
    assert.equal(r.code, 0, r.stderr);
    // i-1, i-2 and this node (i-3) kept; five[3] terminating and five[4] gone are dropped; a pending node is not added.
    assert.deepEqual(valuesOf(r.state), [five[0]!, five[1]!, five[2]!].sort());
    assert.match(r.stderr, /dropping 10\.0\.10\.4 10\.0\.10\.5/);
  });

  test('GIVEN the group cannot be described (API failure) WHEN a node reconciles THEN it fails and the record keeps every address', () => {
    const five = ips(5);
    const instances = five.map((ip, i) => ({ id: `i-${i}`, ip, state: 'InService' }));
    const r = scenario({ records: [{ Name: NAME, Type: 'A', TTL: 10, Values: five }], nextLocalIps: [five[0]!], instanceId: 'i-0', instances, asgFails: true }, '"$R" RECONCILE');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /cannot describe group membership \(Throttling\): keeping every address/);
    assert.deepEqual(valuesOf(r.state), five);
    assert.equal(r.state.changes ?? 0, 0);
  });

  test('GIVEN a membership read that does not list this node WHEN it reconciles THEN nobody is dropped (a stale or partial answer is not trusted)', () => {
    const four = ips(4);
    const instances = [{ id: 'i-1', ip: four[0]!, state: 'InService' }, { id: 'i-2', ip: four[1]!, state: 'Standby' }];
    const r = scenario({ records: [{ Name: NAME, Type: 'A', TTL: 10, Values: four }], nextLocalIps: [four[1]!], instanceId: 'i-2', instances }, '"$R" RECONCILE');
    assert.notEqual(r.code, 0);
    assert.deepEqual(valuesOf(r.state), four);
    assert.equal(r.state.changes ?? 0, 0);
  });
});
