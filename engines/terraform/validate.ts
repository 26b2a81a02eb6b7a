/**
 * `terraform init -backend=false` + `terraform validate`, offline: providers come from a local filesystem
 * mirror (see DEVELOPERS.md), never from the registry.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TerraformTools {
  /** The terraform CLI, or undefined when it is not installed. */
  readonly cli?: string;
  /** Filesystem mirror holding registry.terraform.io/hashicorp/aws, or undefined. */
  readonly mirror?: string;
  /** What is missing, in words fit for an error message. */
  readonly missing: string[];
}

/** Finds the CLI (MAILFLEET_TERRAFORM or PATH) and the provider mirror (MAILFLEET_TF_PLUGIN_DIR or a tf-plugins folder near /). */
export function findTerraformTools(env: NodeJS.ProcessEnv = process.env): TerraformTools {
  const missing: string[] = [];
  const cliName = env.MAILFLEET_TERRAFORM ?? 'terraform';
  const version = spawnSync(cliName, ['version'], { encoding: 'utf8', env: { ...env, CHECKPOINT_DISABLE: '1' } });
  const cli = version.status === 0 ? cliName : undefined;
  if (!cli) missing.push(`the terraform CLI ("${cliName}" not runnable; install Terraform 1.11 or set MAILFLEET_TERRAFORM)`);
  let mirror = env.MAILFLEET_TF_PLUGIN_DIR;
  if (mirror === undefined) {
    const found = spawnSync('find', ['/', '-maxdepth', '3', '-type', 'd', '-name', 'tf-plugins'], { encoding: 'utf8' });
    mirror = found.stdout.split('\n').find((p) => p && existsSync(join(p, 'registry.terraform.io', 'hashicorp', 'aws')));
  }
  if (!mirror || !existsSync(join(mirror, 'registry.terraform.io', 'hashicorp', 'aws'))) {
    missing.push(
      `a provider filesystem mirror with registry.terraform.io/hashicorp/aws (no tf-plugins folder found within 3 levels of /; set MAILFLEET_TF_PLUGIN_DIR)`,
    );
    mirror = undefined;
  }
  return { cli, mirror, missing };
}

export interface ValidateResult {
  readonly valid: boolean;
  /** `terraform validate -json` diagnostics, or the init error. */
  readonly diagnostics: unknown[];
  readonly output: string;
}

/** Runs init + validate in `dir` (a folder holding cdk.tf.json) with a CLI config that only allows the mirror. */
export function validateTerraform(dir: string, tools: Required<Omit<TerraformTools, 'missing'>>): ValidateResult {
  const cfgDir = mkdtempSync(join(tmpdir(), 'mailfleet-tfrc-'));
  try {
    const rc = join(cfgDir, 'terraformrc');
    writeFileSync(
      rc,
      `provider_installation {
  filesystem_mirror {
    path    = ${JSON.stringify(tools.mirror)}
    include = ["registry.terraform.io/hashicorp/aws"]
  }
  direct {
    exclude = ["registry.terraform.io/*/*"]
  }
}
`,
    );
    const env = { ...process.env, TF_CLI_CONFIG_FILE: rc, CHECKPOINT_DISABLE: '1', TF_IN_AUTOMATION: '1', TF_INPUT: '0' };
    const init = spawnSync(tools.cli, ['init', '-backend=false', '-input=false', '-no-color'], { cwd: dir, env, encoding: 'utf8' });
    if (init.status !== 0) return { valid: false, diagnostics: [init.stderr], output: init.stdout + init.stderr };
    const v = spawnSync(tools.cli, ['validate', '-json', '-no-color'], { cwd: dir, env, encoding: 'utf8' });
    const parsed = JSON.parse(v.stdout || '{}') as { valid?: boolean; diagnostics?: unknown[] };
    return { valid: v.status === 0 && parsed.valid === true, diagnostics: parsed.diagnostics ?? [], output: v.stdout + v.stderr };
  } finally {
    rmSync(cfgDir, { recursive: true, force: true });
  }
}
