import { ArnFormat, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import type { Plan } from '../../lib/plan/types.js';
import { ssmPrefix } from '../../lib/render/node-layout.js';
import { acknowledge, acknowledgeAssetRead, nagEnv } from './nag.js';

/**
 * The instance role every mailfleet node gets: Session Manager (there is no SSH), the CloudWatch
 * agent, and read access to the platform's own SSM parameters.
 */
export function nodeRole(scope: Construct, id: string, plan: Plan, description: string): iam.Role {
  const role = new iam.Role(scope, id, {
    assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
    description,
    managedPolicies: [
      iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore'),
      iam.ManagedPolicy.fromAwsManagedPolicyName('CloudWatchAgentServerPolicy'),
    ],
  });
  const stack = Stack.of(scope);
  role.addToPolicy(
    new iam.PolicyStatement({
      actions: ['ssm:GetParameter'],
      resources: [stack.formatArn({ service: 'ssm', resource: 'parameter', resourceName: `${ssmPrefix(plan).slice(1)}/*` })],
    }),
  );
  const env = nagEnv(role);
  acknowledge(
    role,
    `AwsSolutions-IAM5[Resource::arn:${env.partition}:ssm:${env.region}:${env.account}:parameter${ssmPrefix(plan)}/*]`,
    'Nodes read only the platform\'s own SSM parameters (node-files URIs, private zone id, geo-replication key), all under one prefix.',
  );
  acknowledgeAssetRead(role);
  acknowledge(
    role,
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
    'Session Manager is the only shell access to nodes (no SSH); this is the AWS-maintained minimum for the SSM agent.',
  );
  acknowledge(
    role,
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/CloudWatchAgentServerPolicy]',
    'The CloudWatch agent ships node logs and the connection metrics the tiers scale on; AWS maintains this policy for it.',
  );
  return role;
}

/** Lets a node role read named secrets (names, not ARNs: Secrets Manager appends a random suffix). */
export function grantSecretsByName(scope: Construct, role: iam.IRole, names: readonly string[]): void {
  const stack = Stack.of(scope);
  const env = nagEnv(role);
  for (const n of names)
    acknowledge(
      role,
      `AwsSolutions-IAM5[Resource::arn:${env.partition}:secretsmanager:${env.region}:${env.account}:secret:${n}-*]`,
      'Secrets are granted by name: Secrets Manager appends a random 6-character suffix to every secret ARN, and the DR region reads replicas it did not create.',
    );
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: ['secretsmanager:GetSecretValue'],
      resources: names.map((n) => stack.formatArn({ service: 'secretsmanager', resource: 'secret', resourceName: `${n}-*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME })),
    }),
  );
}
