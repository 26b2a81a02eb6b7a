/**
 * Translates a security group of the platform model (lib/plan/network.ts) into CDK rules: the constructs
 * spell no port, peer or description of their own, so CDK, Terraform and Pulumi open the same ports.
 */
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type { Construct } from 'constructs';
import { tagRole } from './tags.js';
import type { GroupRole, IngressRuleModel, SecurityGroupModel } from '../../lib/plan/network.js';

const portOf = (r: IngressRuleModel): ec2.Port => (r.fromPort === r.toPort && !r.range ? ec2.Port.tcp(r.fromPort) : ec2.Port.tcpRange(r.fromPort, r.toPort));

/**
 * Adds the CIDR rules among `rules` (a model group's, or the model's cross-region rules) to `sg`: scope
 * `vpc` as `vpc`'s CIDR (a reference, right for an imported VPC too). Rules scoped `peer-region` are left
 * to the constructs' peer-CIDR props (the stacks pass the model's value; a construct used alone may be
 * given another region's CIDR without a two-region plan).
 */
export function addCidrIngress(sg: ec2.SecurityGroup, rules: SecurityGroupModel | readonly IngressRuleModel[], vpc: ec2.IVpc): void {
  for (const r of 'ingress' in rules ? rules.ingress : rules) {
    if (!('cidr' in r.peer) || ('ingress' in rules && r.peer.scope === 'peer-region')) continue;
    sg.addIngressRule(ec2.Peer.ipv4(r.peer.scope === 'vpc' ? vpc.vpcCidrBlock : r.peer.cidr), portOf(r), r.description);
  }
}

/** Adds the model group's rules whose peer is the group of role `from`, with `peer` standing for that group. */
export function allowGroupIngress(sg: ec2.SecurityGroup, group: SecurityGroupModel, from: GroupRole, peer: ec2.IConnectable): void {
  for (const r of group.ingress) if ('role' in r.peer && r.peer.role === from) sg.connections.allowFrom(peer, portOf(r), r.description);
}

/** The model group as a CDK security group (id `Sg`): its description, egress, role tag and CIDR rules. */
export function modelSecurityGroup(scope: Construct, vpc: ec2.IVpc, group: SecurityGroupModel): ec2.SecurityGroup {
  const sg = new ec2.SecurityGroup(scope, 'Sg', { vpc, description: group.description, allowAllOutbound: group.egressAllTo !== undefined });
  tagRole(sg, group.role);
  addCidrIngress(sg, group, vpc);
  return sg;
}
