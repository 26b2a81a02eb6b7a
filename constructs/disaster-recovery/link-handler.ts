/**
 * The region link's custom-resource handler, shipped inline (CommonJS `index.js`, the Lambda Node.js
 * runtime's own AWS SDK v3): no asset, so synth stays offline and needs no bundling.
 *
 * Two actions on one function:
 * - `read`: GetParameter of each fact in the other region; a missing one fails the deploy with the
 *   model's message (which stack to deploy first). Delete does nothing.
 * - `link`: the pieces in the other region that the link owner makes: a route per route table,
 *   the zone association, EFS replication. Create/Update are idempotent (an existing route is
 *   replaced, an existing association or replication kept); Update removes what the new properties no
 *   longer hold; Delete removes every piece and ignores what is already gone.
 *
 * test/stacks/region-link.test.ts runs this source against a fake SDK seeded from the synthesized templates.
 */
export const LINK_HANDLER_SOURCE = String.raw`'use strict';
const https = require('https');
const clients = {};
function call(pkg, cls, region, command, input) {
  const m = require(pkg);
  const key = cls + ':' + (region || '');
  if (!clients[key]) clients[key] = new m[cls](region ? { region } : {});
  return clients[key].send(new m[command + 'Command'](input));
}
const ssm = (region, c, i) => call('@aws-sdk/client-ssm', 'SSMClient', region, c, i);
const ec2 = (region, c, i) => call('@aws-sdk/client-ec2', 'EC2Client', region, c, i);
const r53 = (c, i) => call('@aws-sdk/client-route-53', 'Route53Client', undefined, c, i);
const efs = (region, c, i) => call('@aws-sdk/client-efs', 'EFSClient', region, c, i);
async function ignoring(names, f) {
  try { await f(); } catch (e) { if (!names.includes(e.name)) throw e; }
}

async function read(p) {
  const data = {};
  for (const f of p.Facts) {
    try {
      data[f.Key] = (await ssm(p.Region, 'GetParameter', { Name: f.Name })).Parameter.Value;
    } catch (e) {
      if (e.name === 'ParameterNotFound') throw new Error(f.Missing);
      throw e;
    }
  }
  return data;
}

function pieces(p) {
  const tables = (p.RouteTableIds || '').split(',').filter(Boolean);
  return {
    routes: tables.map((t) => ({ RouteTableId: t, DestinationCidrBlock: p.DestinationCidr })),
    zone: p.ZoneId ? { HostedZoneId: p.ZoneId, VPC: { VPCId: p.VpcId, VPCRegion: p.VpcRegion } } : undefined,
    efs: p.EfsSourceId ? { SourceFileSystemId: p.EfsSourceId, Destinations: [{ FileSystemId: p.EfsDestinationId, Region: p.EfsDestinationRegion }] } : undefined,
  };
}
const sameRoute = (a, b) => a.RouteTableId === b.RouteTableId && a.DestinationCidrBlock === b.DestinationCidrBlock;
const sameJson = (a, b) => JSON.stringify(a) === JSON.stringify(b);

async function putRoute(region, r) {
  try { await ec2(region, 'CreateRoute', r); } catch (e) {
    if (e.name !== 'RouteAlreadyExists') throw e;
    await ec2(region, 'ReplaceRoute', r);
  }
}
const dropRoute = (region, r) => ignoring(['InvalidRoute.NotFound', 'InvalidRouteTableID.NotFound'], () => ec2(region, 'DeleteRoute', r));
async function putZone(z) {
  const zone = await r53('GetHostedZone', { Id: z.HostedZoneId });
  if ((zone.VPCs || []).some((v) => v.VPCId === z.VPC.VPCId)) return;
  await r53('AssociateVPCWithHostedZone', z);
}
const dropZone = (z) => ignoring(['VPCAssociationNotFound', 'NoSuchHostedZone'], () => r53('DisassociateVPCFromHostedZone', z));
async function putEfs(region, r) {
  let current;
  try {
    current = (await efs(region, 'DescribeReplicationConfigurations', { FileSystemId: r.SourceFileSystemId })).Replications || [];
  } catch (e) {
    if (e.name !== 'ReplicationNotFound') throw e;
    current = [];
  }
  const want = r.Destinations[0].FileSystemId;
  if (current.some((c) => (c.Destinations || []).some((d) => d.FileSystemId === want))) return;
  if (current.length > 0) throw new Error('file system ' + r.SourceFileSystemId + ' already replicates elsewhere; delete that replication first');
  await efs(region, 'CreateReplicationConfiguration', r);
}
const dropEfs = (region, r) => ignoring(['ReplicationNotFound', 'FileSystemNotFound'], () => efs(region, 'DeleteReplicationConfiguration', { SourceFileSystemId: r.SourceFileSystemId }));

async function link(p, old) {
  const want = pieces(p);
  if (old) {
    const had = pieces(old);
    for (const r of had.routes) if (old.Region !== p.Region || !want.routes.some((w) => sameRoute(w, r))) await dropRoute(old.Region, r);
    if (had.zone && !sameJson(had.zone, want.zone)) await dropZone(had.zone);
    if (had.efs && (old.Region !== p.Region || !sameJson(had.efs, want.efs))) await dropEfs(old.Region, had.efs);
  }
  for (const r of want.routes) await putRoute(p.Region, { ...r, VpcPeeringConnectionId: p.PeeringConnectionId });
  if (want.zone) await putZone(want.zone);
  if (want.efs) await putEfs(p.Region, want.efs);
}
async function unlink(p) {
  const had = pieces(p);
  for (const r of had.routes) await dropRoute(p.Region, r);
  if (had.zone) await dropZone(had.zone);
  if (had.efs) await dropEfs(p.Region, had.efs);
}

async function run(event) {
  const p = event.ResourceProperties;
  const out = {
    Status: 'SUCCESS',
    PhysicalResourceId: event.PhysicalResourceId || p.Action + ':' + p.Region + ':' + event.LogicalResourceId,
    StackId: event.StackId, RequestId: event.RequestId, LogicalResourceId: event.LogicalResourceId, Data: {},
  };
  try {
    if (p.Action === 'read') { if (event.RequestType !== 'Delete') out.Data = await read(p); }
    else if (event.RequestType === 'Delete') await unlink(p);
    else await link(p, event.RequestType === 'Update' ? event.OldResourceProperties : undefined);
  } catch (e) {
    console.error(e);
    out.Status = 'FAILED';
    out.Reason = String((e && e.message) || e);
  }
  return out;
}
function respond(url, body) {
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: 'PUT', headers: { 'content-type': '', 'content-length': Buffer.byteLength(text) } }, (res) => { res.resume(); res.on('end', resolve); });
    req.on('error', reject);
    req.end(text);
  });
}
exports.run = run;
exports.handler = async (event) => respond(event.ResponseURL, await run(event));
`;
