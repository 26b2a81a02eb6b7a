/**
 * The Managed AD service-account function (lib/plan/managed-ad.ts BIND_ACCOUNT_FUNCTION) as the source
 * every engine deploys: CommonJS for the Lambda Node.js runtime, which carries AWS SDK v3 (nothing is
 * bundled). Invoked by the CDK provider framework (a CloudFormation event: the input is its
 * ResourceProperties) or directly by Terraform's aws_lambda_invocation and Pulumi's lambda.Invocation
 * (the input is the event). Steps, each safe to repeat:
 *   1. enable Directory Data Access (the ds-data API refuses calls until it is on) and wait for it;
 *   2. ds-data CreateUser: the account lands in OU=Users,OU=<NetBIOS name> (a ConflictException means it exists);
 *   3. read the bind secret by ARN and ds ResetUserPassword with it (which also enables the account).
 * The password is never logged, returned or passed in the event.
 */
export const BIND_ACCOUNT_HANDLER = `'use strict';
const { SecretsManagerClient, GetSecretValueCommand } = require('@aws-sdk/client-secrets-manager');
const { DirectoryServiceClient, DescribeDirectoryDataAccessCommand, EnableDirectoryDataAccessCommand, ResetUserPasswordCommand } = require('@aws-sdk/client-directory-service');
const { DirectoryServiceDataClient, CreateUserCommand } = require('@aws-sdk/client-directory-service-data');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const RETRYABLE = new Set(['DirectoryUnavailableException', 'ThrottlingException', 'ServiceException', 'InternalServerException']);

async function retrying(what, fn, tries, waitMs) {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i >= tries || !RETRYABLE.has(e.name)) throw e;
      console.log(what + ': ' + e.name + ', retrying (' + i + '/' + tries + ')');
      await sleep(waitMs);
    }
  }
}

async function enableDataAccess(ds, DirectoryId, waitMs) {
  const status = async () => (await ds.send(new DescribeDirectoryDataAccessCommand({ DirectoryId }))).DataAccessStatus;
  let s = await status();
  if (s === 'Enabled') return;
  if (s !== 'Enabling') {
    console.log('enabling Directory Data Access on ' + DirectoryId);
    await ds.send(new EnableDirectoryDataAccessCommand({ DirectoryId }));
  }
  for (let i = 0; i < 60; i++) {
    s = await status();
    if (s === 'Enabled') return;
    if (s === 'Failed') throw new Error('Directory Data Access failed to enable on ' + DirectoryId);
    await sleep(waitMs);
  }
  throw new Error('Directory Data Access still ' + s + ' on ' + DirectoryId);
}

exports.ensureBindAccount = async function ensureBindAccount(input, opts) {
  const waitMs = (opts && opts.waitMs) !== undefined ? opts.waitMs : 10000;
  const { DirectoryId, SamAccountName, SecretArn } = input;
  if (!DirectoryId || !SamAccountName || !SecretArn) throw new Error('bind account: DirectoryId, SamAccountName and SecretArn are required');
  const ds = new DirectoryServiceClient({});
  const data = new DirectoryServiceDataClient({});
  const sm = new SecretsManagerClient({});
  await enableDataAccess(ds, DirectoryId, waitMs);
  try {
    await retrying('CreateUser', () => data.send(new CreateUserCommand({ DirectoryId, SAMAccountName: SamAccountName })), 12, waitMs);
    console.log('created ' + SamAccountName + ' in ' + DirectoryId);
  } catch (e) {
    if (e.name !== 'ConflictException') throw e;
    console.log(SamAccountName + ' exists in ' + DirectoryId);
  }
  const secret = await sm.send(new GetSecretValueCommand({ SecretId: SecretArn }));
  if (!secret.SecretString) throw new Error('bind account: the secret ' + SecretArn + ' holds no string value');
  await retrying('ResetUserPassword', () => ds.send(new ResetUserPasswordCommand({ DirectoryId, UserName: SamAccountName, NewPassword: secret.SecretString })), 12, waitMs);
  console.log('set the password of ' + SamAccountName + ' from ' + SecretArn);
  return { PhysicalResourceId: DirectoryId + '/' + SamAccountName, Data: { SamAccountName } };
};

exports.handler = async function handler(event) {
  // CloudFormation (CDK provider framework): the account outlives the resource; the directory's own deletion removes it.
  if (event && event.RequestType === 'Delete') return { PhysicalResourceId: event.PhysicalResourceId };
  const input = event && event.ResourceProperties ? event.ResourceProperties : event;
  return exports.ensureBindAccount(input);
};
`;
