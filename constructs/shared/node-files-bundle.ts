import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import type { Plan } from '../../lib/plan/types.js';
import { nodeFiles } from '../../lib/render/node-files.js';
import { nodeFilesParameter, type NodeRole, type RegionRole, type RenderedFile } from '../../lib/render/node-layout.js';
import { writeFiles } from './node-files-dir.js';

export interface NodeFilesBundleProps {
  /** The plan the files are rendered from. */
  readonly plan: Plan;
  /** Node role whose bundle this is. */
  readonly role: NodeRole;
  /**
   * Region the nodes run in.
   * @default 'primary'
   */
  readonly region?: RegionRole;
}

/**
 * A role's rendered node files as a zipped S3 asset, plus the SSM parameter holding its s3:// URI that
 * the role's user data reads at boot.
 */
export class NodeFilesBundle extends Construct {
  public readonly asset: s3assets.Asset;
  public readonly parameter: ssm.StringParameter;
  public readonly files: readonly RenderedFile[];

  constructor(scope: Construct, id: string, props: NodeFilesBundleProps) {
    super(scope, id);
    this.files = nodeFiles(props.plan, props.role, props.region ?? 'primary');
    this.asset = new s3assets.Asset(this, 'Asset', { path: writeFiles(this.files), exclude: ['.complete'] });
    this.parameter = new ssm.StringParameter(this, 'Uri', {
      parameterName: nodeFilesParameter(props.plan, props.role),
      stringValue: this.asset.s3ObjectUrl,
      description: `mailfleet ${props.role} node files (rendered from the plan)`,
    });
  }

  /** Lets nodes read the parameter and download the bundle. */
  grantRead(grantee: iam.IGrantable): void {
    this.asset.grantRead(grantee);
    this.parameter.grantRead(grantee);
  }
}
