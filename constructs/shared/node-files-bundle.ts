import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import type { Plan } from '../../lib/plan/types.js';
import { nodeFiles } from '../../lib/render/node-files.js';
import { nodeFilesParameter, type NodeRole, type RegionRole, type RenderedFile } from '../../lib/render/node-layout.js';

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

/** Writes files into a content-addressed temp folder (the asset hash then follows the content only). */
function writeFiles(files: readonly RenderedFile[]): string {
  const h = createHash('sha256');
  for (const f of files) h.update(`${f.path}\0${f.executable ? 'x' : '-'}\0${f.content}\0`);
  const dir = join(tmpdir(), 'mailfleet-node-files', h.digest('hex').slice(0, 24));
  if (existsSync(join(dir, '.complete'))) return dir;
  for (const f of files) {
    const p = join(dir, f.path);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, f.content);
    chmodSync(p, f.executable ? 0o755 : 0o644);
  }
  writeFileSync(join(dir, '.complete'), '');
  return dir;
}
