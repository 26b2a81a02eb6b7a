import { CustomResource, Duration, Stack, type CfnElement } from 'aws-cdk-lib';
import type * as directoryservice from 'aws-cdk-lib/aws-directoryservice';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { BIND_ACCOUNT_FUNCTION, type BindAccountInput } from '../../lib/plan/managed-ad.js';
import { BIND_ACCOUNT_HANDLER } from '../../lib/render/bind-account.js';
import { acknowledge } from '../shared/nag.js';

// The model's runtime as CDK spells it (CDK knows which runtimes take inline code).
const BIND_ACCOUNT_RUNTIME = lambda.Runtime.NODEJS_22_X;
if (BIND_ACCOUNT_RUNTIME.name !== BIND_ACCOUNT_FUNCTION.runtime) throw new Error(`bind account runtime: the model says ${BIND_ACCOUNT_FUNCTION.runtime}`);

export interface ManagedAdBindAccountProps {
  /** The directory the account is created in. */
  readonly directory: directoryservice.CfnMicrosoftAD;
  /** sAMAccountName of the account (it lands in OU=Users,OU=<NetBIOS name>). */
  readonly samAccountName: string;
  /** The secret whose value becomes the account's password; the function reads it by ARN. */
  readonly bindSecret: secretsmanager.ISecret;
}

/**
 * The daemons' service account in an AWS Managed Microsoft AD, which CloudFormation cannot create: a
 * custom resource whose function (lib/render/bind-account.ts) enables Directory Data Access, creates the
 * user with the Directory Service Data API and sets its password from the bind secret with
 * ResetUserPassword. The password never appears in the template, the event or the logs.
 */
export class ManagedAdBindAccount extends Construct {
  /** The function that creates the account (also the provider's onEvent handler). */
  public readonly function: lambda.Function;
  public readonly resource: CustomResource;

  constructor(scope: Construct, id: string, props: ManagedAdBindAccountProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const directoryArn = stack.formatArn({ service: 'ds', resource: 'directory', resourceName: props.directory.ref });
    this.function = new lambda.Function(this, 'Function', {
      description: 'mailfleet: creates the Managed AD service account and sets its password from the bind secret',
      runtime: BIND_ACCOUNT_RUNTIME,
      handler: BIND_ACCOUNT_FUNCTION.handler,
      code: lambda.Code.fromInline(BIND_ACCOUNT_HANDLER),
      timeout: Duration.seconds(BIND_ACCOUNT_FUNCTION.timeoutSeconds),
    });
    this.function.addToRolePolicy(new iam.PolicyStatement({ actions: [...BIND_ACCOUNT_FUNCTION.directoryActions], resources: [directoryArn] }));
    this.function.addToRolePolicy(new iam.PolicyStatement({ actions: [...BIND_ACCOUNT_FUNCTION.secretActions], resources: [props.bindSecret.secretArn] }));
    const provider = new cr.Provider(this, 'Provider', { onEventHandler: this.function });
    const input: BindAccountInput = { DirectoryId: props.directory.ref, SamAccountName: props.samAccountName, SecretArn: props.bindSecret.secretArn };
    this.resource = new CustomResource(this, 'Resource', { serviceToken: provider.serviceToken, resourceType: 'Custom::MailfleetAdBindAccount', properties: { ...input } });
    // Both functions only write their own logs (the AWS-managed basic execution policy); the framework
    // invokes the handler's versions (ARN:*). The runtime is the model's (lib/plan/managed-ad.ts).
    acknowledge(this, 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]', 'Lambda basic execution (own log group only) for the one-shot bind account function and the CDK provider framework.');
    const fnId = stack.getLogicalId(this.function.node.defaultChild as CfnElement);
    acknowledge(this, `AwsSolutions-IAM5[Resource::<${fnId}.Arn>:*]`, 'The CDK provider framework invokes its onEvent handler and that handler\'s versions.');
    acknowledge(this, 'AwsSolutions-L1', `The runtime is pinned by the model (${BIND_ACCOUNT_FUNCTION.runtime}) so every engine deploys the same one.`);
  }
}
