/**
 * The AWS API as a node sees it, run inside the fleet's fabric namespace by run.ts: IMDSv2 on
 * 169.254.169.254:80 (token, placement, instance id, address, instance tags, instance-profile
 * credentials), and on :443 (TLS, a certificate from the harness's own CA that the hosts trust) SSM
 * GetParameter (and PutParameter: the geo-replication key hand-off to the DR region), Secrets Manager
 * GetSecretValue, S3 GetObject/HeadObject (and PutObject into the buckets
 * the template creates, kept under the run folder: the audit journal), Auto Scaling
 * DescribeAutoScalingInstances / DescribeAutoScalingGroups / CompleteLifecycleAction / SetInstanceHealth,
 * EC2 DescribeInstances, and Route 53 ListResourceRecordSets / ChangeResourceRecordSets, all answering
 * from the AwsWorld that aws.ts read from the engine's output and from the harness's hosts (a group's
 * instances are the hosts launched from it that are not terminated; Pending:Wait until they complete
 * their launch hook, InService after).
 * Route 53 keeps Route 53's batch rules (a batch applies whole or not at all; DELETE must match the set's
 * TTL and values exactly; CREATE of an existing set fails; simple and multivalue sets of one name do not
 * mix): the mail tier's read-modify-write relies on them. Changes rewrite the private zones' hosts file and
 * reload dnsmasq (the VPC resolver stand-in).
 * Calls that change something are appended to the events file as JSON lines for the harness to check.
 * Signatures are not verified: the boundary is what is asked and answered, not IAM.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createServer as createHttp, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AwsWorld } from './aws.js';

export interface StandInConfig {
  readonly world: AwsWorld;
  /** JSON file: address -> { instanceId, tags, asg?, az } (re-read on each request: hosts come and go). */
  readonly hostsFile: string;
  /** Static private-zone records (name -> addresses), from the template. */
  readonly staticRecords: Record<string, string[]>;
  readonly dnsHostsFile: string;
  readonly dnsmasqPidFile: string;
  readonly eventsFile: string;
  readonly tlsCert: string;
  readonly tlsKey: string;
  /** Buckets the template creates that take PutObject (the audit archive), and the folder their objects go to. */
  readonly writableBuckets: readonly string[];
  readonly objectsDir: string;
  readonly imdsAddress: string;
  readonly apiAddress: string;
}

interface HostEntry {
  readonly instanceId: string;
  readonly tags: Record<string, string>;
  readonly asg?: string;
  readonly az: string;
  /** The harness killed it: a terminated instance (in no group, no address). */
  readonly terminated?: boolean;
  /** Its group is terminating it: Terminating:Wait until it completes the terminate hook. */
  readonly terminating?: boolean;
}

const cfg = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as StandInConfig;
const w = cfg.world;
let hostsCache: { mtime: number; hosts: Record<string, HostEntry> } = { mtime: -1, hosts: {} };
function hosts(): Record<string, HostEntry> {
  const m = statSync(cfg.hostsFile).mtimeMs;
  if (m !== hostsCache.mtime) hostsCache = { mtime: m, hosts: JSON.parse(readFileSync(cfg.hostsFile, 'utf8')) as Record<string, HostEntry> };
  return hostsCache.hosts;
}
const byInstance = (id: string) => Object.entries(hosts()).find(([, h]) => h.instanceId === id);
const event = (e: Record<string, unknown>) => appendFileSync(cfg.eventsFile, JSON.stringify({ at: Date.now(), ...e }) + '\n');
const peer = (q: IncomingMessage) => (q.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
/** A record set as Route 53 keeps it (names without the trailing dot, lower case). */
interface RecordSet {
  readonly zone: string;
  readonly name: string;
  readonly type: string;
  readonly ttl: number;
  readonly setId?: string;
  readonly multiValue?: boolean;
  readonly values: readonly string[];
}
// Sets written through ChangeResourceRecordSets (the template's own records are staticRecords).
let dynamic: RecordSet[] = [];
const setKey = (r: Pick<RecordSet, 'zone' | 'name' | 'type' | 'setId'>) => `${r.zone} ${r.name} ${r.type} ${r.setId ?? ''}`;
function writeDns(): void {
  const lines: string[] = [];
  for (const [name, ips] of Object.entries(cfg.staticRecords)) for (const ip of ips) lines.push(`${ip} ${name}`);
  for (const r of dynamic) if (r.type === 'A') for (const ip of r.values) lines.push(`${ip} ${r.name}`);
  writeFileSync(cfg.dnsHostsFile, lines.join('\n') + '\n');
  try {
    process.kill(Number(readFileSync(cfg.dnsmasqPidFile, 'utf8').trim()), 'SIGHUP');
  } catch {
    /* dnsmasq not up yet: it reads the file when it starts */
  }
}
writeDns();

// --- IMDSv2 ---
const TOKEN = 'fleet-imds-token';
const ROLE = 'mailfleet-node';
createHttp((q, s) => {
  const h = hosts()[peer(q)];
  if (q.method === 'PUT' && q.url === '/latest/api/token') return void s.end(TOKEN);
  if (q.headers['x-aws-ec2-metadata-token'] !== TOKEN || !h) {
    s.statusCode = 401;
    return void s.end();
  }
  const path = (q.url ?? '').replace(/^\/latest\//, '');
  const exp = new Date(Date.now() + 6 * 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');
  const meta: Record<string, string> = {
    'meta-data/placement/region': w.region,
    'meta-data/placement/availability-zone': h.az,
    'meta-data/instance-id': h.instanceId,
    'meta-data/local-ipv4': peer(q),
    'meta-data/iam/security-credentials/': ROLE,
    [`meta-data/iam/security-credentials/${ROLE}`]: JSON.stringify({
      Code: 'Success',
      LastUpdated: new Date().toISOString(),
      Type: 'AWS-HMAC',
      AccessKeyId: 'ASIAFLEETSTANDIN0000',
      SecretAccessKey: 'fleet-stand-in-secret',
      Token: 'fleet-stand-in-session',
      Expiration: exp,
    }),
    'meta-data/tags/instance': Object.keys(h.tags).join('\n'),
  };
  // What EC2 answers in an Auto Scaling group: the state the group is moving the instance to.
  if (h.asg) meta['meta-data/autoscaling/target-lifecycle-state'] = h.terminating ? 'Terminated' : 'InService';
  for (const [k, v] of Object.entries(h.tags)) meta[`meta-data/tags/instance/${k}`] = v;
  const v = meta[path];
  if (v === undefined) {
    s.statusCode = 404;
    return void s.end();
  }
  s.end(v);
}).listen(80, cfg.imdsAddress);

// --- The regional and global endpoints, by Host header ---
function json(s: ServerResponse, status: number, o: unknown): void {
  s.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
  s.end(JSON.stringify(o));
}
function xml(s: ServerResponse, status: number, text: string): void {
  s.writeHead(status, { 'content-type': 'text/xml' });
  s.end(`<?xml version="1.0" encoding="UTF-8"?>\n${text}`);
}
const ASG_NS = 'http://autoscaling.amazonaws.com/doc/2011-01-01/';
const asgError = (s: ServerResponse, msg: string) =>
  xml(s, 400, `<ErrorResponse xmlns="${ASG_NS}"><Error><Type>Sender</Type><Code>ValidationError</Code><Message>${msg}</Message></Error><RequestId>fleet</RequestId></ErrorResponse>`);

const R53_NS = 'https://route53.amazonaws.com/doc/2013-04-01/';
function route53Error(s: ServerResponse, status: number, code: string, msg: string): void {
  xml(s, status, `<ErrorResponse xmlns="${R53_NS}"><Error><Type>Sender</Type><Code>${code}</Code><Message>${msg}</Message></Error><RequestId>fleet</RequestId></ErrorResponse>`);
}
function ec2Error(s: ServerResponse, code: string, msg: string): void {
  xml(s, 400, `<Response><Errors><Error><Code>${code}</Code><Message>${msg}</Message></Error></Errors><RequestID>fleet</RequestID></Response>`);
}

// Instances that completed their launch hook with CONTINUE: InService from then on.
const inService = new Set<string>();
const lifecycle = (h: HostEntry) => (h.terminating ? 'Terminating:Wait' : inService.has(h.instanceId) ? 'InService' : 'Pending:Wait');

/** The text of each `<tag>` element in `x` (flat: no nesting of the same tag). */
function tags(x: string, tag: string): string[] {
  return x.split(`<${tag}>`).slice(1).map((p) => p.split(`</${tag}>`)[0] ?? '');
}
const unescapeXml = (v: string) => v.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
const bareName = (n: string) => unescapeXml(n).replace(/\.$/, '').toLowerCase();

function parseChangeBatch(body: string, zone: string): { action: string; set: RecordSet }[] {
  return tags(body, 'Change').map((c) => {
    const set = tags(c, 'ResourceRecordSet')[0] ?? '';
    const setId = tags(set, 'SetIdentifier')[0];
    return {
      action: tags(c, 'Action')[0] ?? '',
      set: {
        zone,
        name: bareName(tags(set, 'Name')[0] ?? ''),
        type: tags(set, 'Type')[0] ?? '',
        ttl: Number(tags(set, 'TTL')[0] ?? 0),
        ...(setId !== undefined ? { setId: unescapeXml(setId) } : {}),
        ...(tags(set, 'MultiValueAnswer')[0] === 'true' ? { multiValue: true } : {}),
        values: tags(set, 'Value').map(unescapeXml),
      },
    };
  });
}

/** Route 53's batch rules: the new record sets, or why the whole batch is refused. */
function applyBatch(sets: readonly RecordSet[], batch: readonly { action: string; set: RecordSet }[]): RecordSet[] | string {
  let out = [...sets];
  for (const { action, set } of batch) {
    const at = out.findIndex((r) => setKey(r) === setKey(set));
    const label = `[name='${set.name}.', type='${set.type}'${set.setId !== undefined ? `, set-identifier='${set.setId}'` : ''}]`;
    if (action === 'DELETE') {
      const r = out[at];
      if (!r) return `Tried to delete resource record set ${label} but it was not found`;
      if (r.ttl !== set.ttl || [...r.values].sort().join(' ') !== [...set.values].sort().join(' '))
        return `Tried to delete resource record set ${label} but the values provided do not match the current values`;
      out.splice(at, 1);
    } else if (action === 'CREATE') {
      if (at >= 0) return `Tried to create resource record set ${label} but it already exists`;
      out.push(set);
    } else if (action === 'UPSERT') {
      out = out.filter((r) => setKey(r) !== setKey(set)).concat([set]);
    } else return `stand-in: no action ${action}`;
  }
  for (const r of out)
    if (out.some((o) => o.zone === r.zone && o.name === r.name && o.type === r.type && (o.setId === undefined) !== (r.setId === undefined)))
      return `RRSet with DNS name ${r.name}., type ${r.type} cannot be created as other RRSets exist with the same name and type but a different routing policy`;
  return out;
}

/** ListResourceRecordSets of the zone's written sets, in Route 53's order (labels reversed), from the start name/type. */
function listRecordSets(s: ServerResponse, zone: string, p: URLSearchParams): void {
  const order = (r: Pick<RecordSet, 'name' | 'type' | 'setId'>) => `${r.name.split('.').reverse().join('.')}\u0000${r.type}\u0000${r.setId ?? ''}`;
  const start = order({ name: bareName(p.get('name') ?? ''), type: p.get('type') ?? '', setId: p.get('identifier') ?? undefined });
  const max = Number(p.get('maxitems') ?? 300);
  const all = dynamic.filter((r) => r.zone === zone && (p.get('name') === null || order(r) >= start)).sort((a, b) => (order(a) < order(b) ? -1 : 1));
  const page = all.slice(0, max);
  const next = all[max];
  const x = (r: RecordSet) =>
    `<ResourceRecordSet><Name>${r.name}.</Name><Type>${r.type}</Type>${r.setId !== undefined ? `<SetIdentifier>${r.setId}</SetIdentifier>` : ''}${r.multiValue ? '<MultiValueAnswer>true</MultiValueAnswer>' : ''}<TTL>${r.ttl}</TTL><ResourceRecords>${r.values.map((v) => `<ResourceRecord><Value>${v}</Value></ResourceRecord>`).join('')}</ResourceRecords></ResourceRecordSet>`;
  xml(
    s,
    200,
    `<ListResourceRecordSetsResponse xmlns="${R53_NS}"><ResourceRecordSets>${page.map(x).join('')}</ResourceRecordSets><IsTruncated>${next ? 'true' : 'false'}</IsTruncated>${next ? `<NextRecordName>${next.name}.</NextRecordName><NextRecordType>${next.type}</NextRecordType>${next.setId !== undefined ? `<NextRecordIdentifier>${next.setId}</NextRecordIdentifier>` : ''}` : ''}<MaxItems>${max}</MaxItems></ListResourceRecordSetsResponse>`,
  );
}

const zips = new Map<string, Buffer>();
function object(bucket: string, key: string): Buffer | undefined {
  const o = w.objects[`${bucket}/${key}`];
  if (!o) return undefined;
  if (o.packaging === 'file') return readFileSync(o.path);
  let z = zips.get(o.path);
  if (!z) {
    // As cdk-assets publishes a folder asset: a zip of its contents, modes kept.
    const r = spawnSync('bash', ['-c', 'cd "$1" && zip -q -r -X - .', '-', o.path], { maxBuffer: 1 << 30 });
    if (r.status !== 0) throw new Error(`zip ${o.path}: ${r.stderr.toString()}`);
    z = r.stdout;
    zips.set(o.path, z);
  }
  return z;
}

/** A PutObject body: the SDK may send it aws-chunked (`<hex size>[;…]\r\n<data>\r\n` … `0`), else as is. */
function objectBody(q: IncomingMessage, raw: Buffer): Buffer {
  if (!String(q.headers['content-encoding'] ?? '').includes('aws-chunked')) return raw;
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = raw.indexOf('\r\n', at);
    if (eol < 0) break;
    const size = parseInt(raw.subarray(at, eol).toString('latin1').split(';')[0]!, 16);
    if (!(size > 0)) break;
    parts.push(raw.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

const rawBody = (q: IncomingMessage) =>
  new Promise<Buffer>((res) => {
    const chunks: Buffer[] = [];
    q.on('data', (d: Buffer) => chunks.push(d));
    q.on('end', () => res(Buffer.concat(chunks)));
  });

async function api(q: IncomingMessage, s: ServerResponse): Promise<void> {
  const host = (q.headers.host ?? '').replace(/:\d+$/, '');
  const raw = await rawBody(q);
  const b = raw.toString();
  const target = String(q.headers['x-amz-target'] ?? '');
  const caller = hosts()[peer(q)]?.instanceId ?? peer(q);
  if (host.startsWith('ssm.')) {
    if (target === 'AmazonSSM.PutParameter') {
      // The primary's storage node 1 hands its geo-replication key to the DR region this way (geo-replication-primary.sh publish).
      const p = JSON.parse(b) as { Name: string; Value: string; Overwrite?: boolean };
      if (w.parameters[p.Name] !== undefined && p.Overwrite !== true) return json(s, 400, { __type: 'ParameterAlreadyExists', message: `The parameter already exists.` });
      w.parameters[p.Name] = p.Value;
      event({ api: 'ssm', action: 'PutParameter', name: p.Name, instance: caller });
      return json(s, 200, { Version: 1, Tier: 'Standard' });
    }
    if (target !== 'AmazonSSM.GetParameter') return json(s, 400, { __type: 'InvalidAction', message: `stand-in: ${target}` });
    const name = (JSON.parse(b) as { Name: string }).Name;
    const v = w.parameters[name];
    if (v === undefined) return json(s, 400, { __type: 'ParameterNotFound', message: `Parameter ${name} not found.` });
    return json(s, 200, { Parameter: { Name: name, Type: 'String', Value: v, Version: 1, ARN: `arn:aws:ssm:${w.region}:${w.account}:parameter${name}` } });
  }
  if (host.startsWith('secretsmanager.')) {
    if (target !== 'secretsmanager.GetSecretValue') return json(s, 400, { __type: 'InvalidRequestException', Message: `stand-in: ${target}` });
    const id = (JSON.parse(b) as { SecretId: string }).SecretId;
    const v = w.secrets[id];
    event({ api: 'secretsmanager', action: 'GetSecretValue', secret: id, instance: caller, found: v !== undefined });
    if (v === undefined) return json(s, 400, { __type: 'ResourceNotFoundException', Message: "Secrets Manager can't find the specified secret." });
    return json(s, 200, { ARN: `arn:aws:secretsmanager:${w.region}:${w.account}:secret:${id}-AbCdEf`, Name: id, SecretString: v, VersionId: 'v1', VersionStages: ['AWSCURRENT'] });
  }
  if (host.startsWith('autoscaling.')) {
    const p = new URLSearchParams(b);
    const action = p.get('Action');
    if (action === 'DescribeAutoScalingInstances') {
      const ids = [...p.entries()].filter(([k]) => k.startsWith('InstanceIds.member.')).map(([, v]) => v);
      const members = ids
        .map((id) => byInstance(id))
        .filter((e): e is [string, HostEntry] => e !== undefined && e[1].asg !== undefined && !e[1].terminated)
        .map(
          ([, h]) =>
            `<member><InstanceId>${h.instanceId}</InstanceId><AutoScalingGroupName>${h.asg}</AutoScalingGroupName><AvailabilityZone>${h.az}</AvailabilityZone><LifecycleState>${lifecycle(h)}</LifecycleState><HealthStatus>HEALTHY</HealthStatus><ProtectedFromScaleIn>false</ProtectedFromScaleIn></member>`,
        );
      return xml(s, 200, `<DescribeAutoScalingInstancesResponse xmlns="${ASG_NS}"><DescribeAutoScalingInstancesResult><AutoScalingInstances>${members.join('')}</AutoScalingInstances></DescribeAutoScalingInstancesResult><ResponseMetadata><RequestId>fleet</RequestId></ResponseMetadata></DescribeAutoScalingInstancesResponse>`);
    }
    if (action === 'DescribeAutoScalingGroups') {
      const names = [...p.entries()].filter(([k]) => k.startsWith('AutoScalingGroupNames.member.')).map(([, v]) => v);
      const live = Object.values(hosts()).filter((h) => h.asg !== undefined && !h.terminated);
      const groups = [...new Set(live.map((h) => h.asg!))].filter((g) => names.length === 0 || names.includes(g));
      event({ api: 'autoscaling', action, groups: names.join(','), instance: caller });
      const body = groups
        .map((g) => {
          const members = live.filter((h) => h.asg === g);
          const instances = members
            .map((h) => `<member><InstanceId>${h.instanceId}</InstanceId><AvailabilityZone>${h.az}</AvailabilityZone><LifecycleState>${lifecycle(h)}</LifecycleState><HealthStatus>Healthy</HealthStatus><ProtectedFromScaleIn>false</ProtectedFromScaleIn></member>`)
            .join('');
          return `<member><AutoScalingGroupName>${g}</AutoScalingGroupName><AutoScalingGroupARN>arn:aws:autoscaling:${w.region}:${w.account}:autoScalingGroup:fleet:autoScalingGroupName/${g}</AutoScalingGroupARN><MinSize>0</MinSize><MaxSize>10</MaxSize><DesiredCapacity>${members.length}</DesiredCapacity><Instances>${instances}</Instances></member>`;
        })
        .join('');
      return xml(s, 200, `<DescribeAutoScalingGroupsResponse xmlns="${ASG_NS}"><DescribeAutoScalingGroupsResult><AutoScalingGroups>${body}</AutoScalingGroups></DescribeAutoScalingGroupsResult><ResponseMetadata><RequestId>fleet</RequestId></ResponseMetadata></DescribeAutoScalingGroupsResponse>`);
    }
    if (action === 'CompleteLifecycleAction') {
      const group = p.get('AutoScalingGroupName') ?? '';
      const hook = p.get('LifecycleHookName') ?? '';
      if (!(w.hooks[group] ?? []).includes(hook)) return asgError(s, `No Lifecycle Hook found for ${hook} on ${group}`);
      const instance = p.get('InstanceId') ?? '';
      const terminating = Object.values(hosts()).some((h) => h.instanceId === instance && h.terminating);
      if (p.get('LifecycleActionResult') === 'CONTINUE' && !terminating) inService.add(instance);
      event({ api: 'autoscaling', action, group, hook, instance: p.get('InstanceId'), result: p.get('LifecycleActionResult') });
      return xml(s, 200, `<CompleteLifecycleActionResponse xmlns="${ASG_NS}"><CompleteLifecycleActionResult/><ResponseMetadata><RequestId>fleet</RequestId></ResponseMetadata></CompleteLifecycleActionResponse>`);
    }
    if (action === 'SetInstanceHealth') {
      event({ api: 'autoscaling', action, instance: p.get('InstanceId'), health: p.get('HealthStatus') });
      return xml(s, 200, `<SetInstanceHealthResponse xmlns="${ASG_NS}"><ResponseMetadata><RequestId>fleet</RequestId></ResponseMetadata></SetInstanceHealthResponse>`);
    }
    return asgError(s, `stand-in: no ${action}`);
  }
  if (host.startsWith('ec2.')) {
    const p = new URLSearchParams(b);
    const action = p.get('Action');
    if (action !== 'DescribeInstances') return ec2Error(s, 'InvalidAction', `stand-in: no ${action}`);
    const ids = [...p.entries()].filter(([k]) => k.startsWith('InstanceId.')).map(([, v]) => v);
    const found = ids.map((id) => [id, byInstance(id)] as const);
    const missing = found.filter(([, e]) => e === undefined).map(([id]) => id);
    if (missing.length > 0) return ec2Error(s, 'InvalidInstanceID.NotFound', `The instance IDs '${missing.join(', ')}' do not exist`);
    event({ api: 'ec2', action, instances: ids.join(','), instance: caller });
    const items = found
      .map(([, e]) => {
        const [ip, h] = e!;
        // A terminated instance keeps being described for a while, without its private address.
        const state = h.terminated ? '<instanceState><code>48</code><name>terminated</name></instanceState>' : `<instanceState><code>16</code><name>running</name></instanceState><privateIpAddress>${ip}</privateIpAddress>`;
        return `<item><instanceId>${h.instanceId}</instanceId>${state}<placement><availabilityZone>${h.az}</availabilityZone></placement></item>`;
      })
      .join('');
    return xml(s, 200, `<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>fleet</requestId><reservationSet><item><reservationId>r-fleet</reservationId><ownerId>${w.account}</ownerId><instancesSet>${items}</instancesSet></item></reservationSet></DescribeInstancesResponse>`);
  }
  if (host === 'route53.amazonaws.com') {
    const m = /^\/2013-04-01\/hostedzone\/([^/?]+)\/rrset\/?(\?.*)?$/.exec(q.url ?? '');
    const zoneId = m?.[1] ?? '';
    const zone = w.zones[zoneId]?.replace(/\.$/, '').toLowerCase();
    if (!m || !zone) return route53Error(s, 404, 'NoSuchHostedZone', `No hosted zone found with ID: ${zoneId}`);
    if (q.method === 'GET') return listRecordSets(s, zone, new URLSearchParams(m[2]?.slice(1) ?? ''));
    const batch = parseChangeBatch(b, zone);
    const next = applyBatch(dynamic, batch);
    const ofName = (sets: readonly RecordSet[], name: string) => sets.filter((r) => r.zone === zone && r.name === name && r.type === 'A');
    const summary = (sets: readonly RecordSet[], name: string) => ofName(sets, name).flatMap((r) => r.values).sort();
    const shape = (sets: readonly RecordSet[], name: string) => ({ sets: ofName(sets, name).length, simple: ofName(sets, name).every((r) => r.setId === undefined) });
    const names = [...new Set(batch.map((c) => c.set.name))];
    if (typeof next === 'string') {
      event({ api: 'route53', action: 'ChangeResourceRecordSets', accepted: false, zone: zoneId, names, instance: caller, reason: next });
      return route53Error(s, 400, 'InvalidChangeBatch', next);
    }
    for (const name of names)
      event({ api: 'route53', action: 'ChangeResourceRecordSets', accepted: true, zone: zoneId, name, instance: caller, changes: batch.filter((c) => c.set.name === name).map((c) => c.action), before: summary(dynamic, name), after: summary(next, name), ...shape(next, name) });
    dynamic = next;
    writeDns();
    return xml(s, 200, `<ChangeResourceRecordSetsResponse xmlns="${R53_NS}"><ChangeInfo><Id>/change/C${Date.now()}</Id><Status>INSYNC</Status><SubmittedAt>${new Date().toISOString()}</SubmittedAt></ChangeInfo></ChangeResourceRecordSetsResponse>`);
  }
  // S3: virtual-hosted (<bucket>.s3.<region>.amazonaws.com/<key>) or path style (s3.<region>.amazonaws.com/<bucket>/<key>).
  const s3 = /^(?:(.+)\.)?s3[.-]/.exec(host);
  if (s3) {
    const path = decodeURIComponent((q.url ?? '/').split('?')[0]!.slice(1));
    const [bucket, key] = s3[1] ? [s3[1], path] : [path.split('/')[0]!, path.split('/').slice(1).join('/')];
    if (q.method === 'PUT') {
      const ok = cfg.writableBuckets.includes(bucket) && key !== '' && !key.split('/').includes('..');
      event({ api: 's3', action: 'PutObject', bucket, key, instance: caller, stored: ok });
      if (!ok) {
        s.writeHead(403, { 'content-type': 'application/xml' });
        return void s.end(`<Error><Code>AccessDenied</Code><Message>stand-in: no PutObject into ${bucket}</Message></Error>`);
      }
      const file = join(cfg.objectsDir, bucket, key);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, objectBody(q, raw));
      s.writeHead(200, { etag: '"fleet"' });
      return void s.end();
    }
    const data = object(bucket, key);
    event({ api: 's3', action: q.method === 'HEAD' ? 'HeadObject' : 'GetObject', bucket, key, instance: caller, found: data !== undefined });
    if (!data) {
      s.writeHead(404, { 'content-type': 'application/xml' });
      return void s.end(q.method === 'HEAD' ? undefined : `<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>${key}</Key></Error>`);
    }
    const head = { etag: '"fleet"', 'last-modified': new Date(0).toUTCString(), 'content-type': 'application/zip', 'accept-ranges': 'bytes' };
    // The CLI downloads objects above 8 MiB in ranged parts.
    const range = /^bytes=(\d+)-(\d*)$/.exec(String(q.headers.range ?? ''));
    if (range && q.method !== 'HEAD') {
      const from = Number(range[1]);
      const to = Math.min(range[2] ? Number(range[2]) : data.length - 1, data.length - 1);
      s.writeHead(206, { ...head, 'content-length': to - from + 1, 'content-range': `bytes ${from}-${to}/${data.length}` });
      return void s.end(data.subarray(from, to + 1));
    }
    s.writeHead(200, { ...head, 'content-length': data.length });
    return void s.end(q.method === 'HEAD' ? undefined : data);
  }
  json(s, 400, { __type: 'UnknownEndpoint', message: `stand-in: no service at ${host}` });
}

createHttps({ cert: readFileSync(cfg.tlsCert), key: readFileSync(cfg.tlsKey) }, (q, s) => {
  api(q, s).catch((e: unknown) => json(s, 500, { __type: 'InternalFailure', message: String(e) }));
}).listen(443, cfg.apiAddress);
process.stdout.write('stand-ins listening\n');
