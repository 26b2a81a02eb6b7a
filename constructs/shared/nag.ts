import { Stack, Token, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * Acknowledges a cdk-nag finding on a construct (cdk-nag 3 reads CDK's native acknowledgements).
 * Every call carries the reason a reviewer would ask for.
 */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

/**
 * How cdk-nag spells this stack's partition, region and account inside finding ids: the concrete
 * values when the stack has an explicit environment, placeholders otherwise.
 */
export function nagEnv(scope: IConstruct): { partition: string; region: string; account: string } {
  const stack = Stack.of(scope);
  const region = Token.isUnresolved(stack.region) ? '<AWS::Region>' : stack.region;
  const account = Token.isUnresolved(stack.account) ? '<AWS::AccountId>' : stack.account;
  const partition = Token.isUnresolved(stack.region)
    ? '<AWS::Partition>'
    : stack.region.startsWith('cn-')
      ? 'aws-cn'
      : stack.region.startsWith('us-gov-')
        ? 'aws-us-gov'
        : 'aws';
  return { partition, region, account };
}

/** Acknowledges the wildcard findings of CDK's S3 asset read grant (Asset.grantRead). */
export function acknowledgeAssetRead(scope: IConstruct): void {
  const { region, account } = nagEnv(scope);
  const qualifier = (Stack.of(scope).node.tryGetContext('@aws-cdk/core:bootstrapQualifier') as string | undefined) ?? 'hnb659fds';
  const reason = 'CDK asset read grant: nodes download their rendered files and the daemon bundle from the bootstrap assets bucket.';
  for (const action of ['s3:GetBucket*', 's3:GetObject*', 's3:List*']) acknowledge(scope, `AwsSolutions-IAM5[Action::${action}]`, reason);
  acknowledge(scope, `AwsSolutions-IAM5[Resource::arn:${nagEnv(scope).partition}:s3:::cdk-${qualifier}-assets-${account}-${region}/*]`, reason);
}
