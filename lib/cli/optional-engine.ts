/**
 * The Terraform and Pulumi engines need packages the mailfleet package lists as optional peers (cdktf is
 * archived upstream; Pulumi is heavy): a user who only runs the CDK engine never installs them. When one is
 * missing, say which engine needs which packages and the command that installs them, instead of Node's
 * "Cannot find package" stack.
 */
import { MailfleetError } from '../errors.js';

export interface OptionalEngine {
  readonly engine: string;
  /** The npm packages (with the versions the engine is tested with) the engine imports. */
  readonly packages: readonly string[];
}

export const TERRAFORM_ENGINE: OptionalEngine = { engine: 'terraform', packages: ['cdktf@0.21.0', '@cdktf/provider-aws@20.1.0'] };
export const PULUMI_ENGINE: OptionalEngine = { engine: 'pulumi', packages: ['@pulumi/pulumi@3.248.0', '@pulumi/aws@^7.48.0'] };

const nameOf = (spec: string): string => spec.slice(0, spec.indexOf('@', 1) > 0 ? spec.indexOf('@', 1) : spec.length);

/** Awaits `load` (a dynamic import of the engine); a missing optional peer becomes a MailfleetError naming it. */
export async function importEngine<T>(which: OptionalEngine, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code !== 'ERR_MODULE_NOT_FOUND') throw e;
    const missing = which.packages.filter((p) => err.message.includes(`'${nameOf(p)}'`) || err.message.includes(`"${nameOf(p)}"`));
    if (missing.length === 0) throw e;
    throw new MailfleetError(
      'BAD_REQUEST',
      `the ${which.engine} engine needs ${which.packages.map(nameOf).join(' and ')}, which are optional and not installed ` +
        `(missing: ${missing.map(nameOf).join(', ')}). Install them beside mailfleet: npm i -D ${which.packages.join(' ')}`,
    );
  }
}
