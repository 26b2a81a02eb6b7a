/** Terraform JSON (cdk.tf.json) → neutral inventory. Reads JSON only; needs no cdktf. */
import {
  ROLE_TAG,
  decodeBase64,
  instanceKind,
  inventoryOf,
  normalizeProtocol,
  type EngineInventory,
  type NeutralResource,
  type NeutralRule,
  type RegionRole,
} from '../inventory.js';

/** Terraform resource type → shared kind. Network plumbing (routes, gateways) is not compared. */
export const TERRAFORM_KINDS: Readonly<Record<string, string>> = Object.freeze({
  aws_vpc: 'vpc',
  aws_subnet: 'subnet',
  aws_security_group: 'security-group',
  aws_lb: 'nlb',
  aws_lb_listener: 'nlb-listener',
  aws_lb_target_group: 'target-group',
  aws_launch_template: 'launch-template',
  aws_autoscaling_group: 'autoscaling-group',
  aws_instance: 'instance',
  aws_ebs_volume: 'ebs-volume',
  aws_efs_file_system: 'efs-filesystem',
  aws_efs_mount_target: 'efs-mount-target',
  aws_directory_service_directory: 'managed-ad',
  aws_route53_resolver_endpoint: 'resolver-endpoint',
  aws_route53_health_check: 'route53-health-check',
  aws_route53_record: 'route53-record',
  aws_fis_experiment_template: 'fis-experiment-template',
});

type Body = Record<string, unknown>;

function tagsOf(type: string, body: Body): Record<string, string> {
  if (type === 'aws_autoscaling_group') {
    const list = (body.tag as { key: string; value: string }[] | undefined) ?? [];
    return Object.fromEntries(list.map((t) => [t.key, t.value]));
  }
  return (body.tags as Record<string, string> | undefined) ?? {};
}

const regionOf = (body: Body): RegionRole => (typeof body.provider === 'string' && body.provider.endsWith('.dr') ? 'dr' : 'primary');
/** "${aws_security_group.primary-sg-mail.id}" → "aws_security_group.primary-sg-mail" */
const addressOf = (ref: unknown) => (typeof ref === 'string' ? /^\$\{([^}]+)\.id\}$/.exec(ref)?.[1] : undefined);

export function terraformInventory(doc: Record<string, unknown>): EngineInventory {
  const resources = (doc.resource as Record<string, Record<string, Body>> | undefined) ?? {};
  const out: NeutralResource[] = [];
  const groupRole = new Map<string, string>();
  for (const [type, byName] of Object.entries(resources)) {
    for (const [name, body] of Object.entries(byName)) {
      const role = tagsOf(type, body)[ROLE_TAG];
      if (type === 'aws_security_group') groupRole.set(`${type}.${name}`, role ?? name);
      const shared = TERRAFORM_KINDS[type];
      if (!shared) continue;
      const kind = shared === 'instance' ? instanceKind(role) : shared;
      const userData =
        type === 'aws_launch_template' && typeof body.user_data === 'string'
          ? decodeBase64(body.user_data)
          : type === 'aws_instance' && typeof body.user_data_base64 === 'string'
            ? decodeBase64(body.user_data_base64)
            : type === 'aws_instance' && typeof body.user_data === 'string'
              ? body.user_data
              : undefined;
      out.push({
        kind,
        region: regionOf(body),
        role,
        port: type === 'aws_lb_listener' ? Number(body.port) : undefined,
        userData,
        record: type === 'aws_route53_record' ? { type: String(body.type), name: String(body.name) } : undefined,
      });
    }
  }
  const rules: NeutralRule[] = [];
  for (const direction of ['ingress', 'egress'] as const) {
    for (const body of Object.values(resources[`aws_vpc_security_group_${direction}_rule`] ?? {})) {
      const group = groupRole.get(addressOf(body.security_group_id) ?? '') ?? String(body.security_group_id);
      const ref = addressOf(body.referenced_security_group_id);
      const protocol = normalizeProtocol(body.ip_protocol as string);
      rules.push({
        region: regionOf(body),
        direction,
        protocol,
        fromPort: protocol === 'all' ? undefined : Number(body.from_port),
        toPort: protocol === 'all' ? undefined : Number(body.to_port),
        group,
        peer: ref ? (groupRole.get(ref) ?? ref) : String(body.cidr_ipv4 ?? body.cidr_ipv6 ?? body.prefix_list_id),
      });
    }
  }
  return inventoryOf(out, rules);
}
