/**
 * The Pulumi program: `pulumi up` in this folder (see Pulumi.yaml) builds the platform of the spec named
 * by config `mailfleet:spec` (a path relative to the repository root).
 */
import * as pulumi from '@pulumi/pulumi';
import { resolve } from 'node:path';
import { packageRoot } from '../../lib/package-root.js';
import { buildPlan } from '../../lib/plan/index.js';
import { loadSpec } from '../../lib/spec/index.js';
import { buildPlatform } from './platform.js';

const root = packageRoot();
const config = new pulumi.Config('mailfleet');
const plan = buildPlan(loadSpec(resolve(root, config.get('spec') ?? 'examples/single-region.yaml')).spec);
const needsAd = plan.directory.kind === 'ldap' && plan.directory.provision === 'managed-ad';
const platform = buildPlatform(plan, { managedAdPassword: needsAd ? config.requireSecret('managedAdAdminPassword') : undefined });

export const nlbDnsNames = platform.nlbDnsNames;
/** The platform model's outputs (primary_VpcId, dr_Nlb0Dns, …): the names `mailfleet dr drill --aws` reads. */
export const outputs = platform.outputs;
