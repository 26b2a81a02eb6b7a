/**
 * Writes a node-files bundle to a temp folder and runs shellcheck on one of its scripts (`-x`, so the
 * files it sources are followed from the bundle itself). Fails loudly when shellcheck is missing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export function assertBundleShellchecks(files: ReadonlyArray<{ readonly path: string; readonly content: string }>, script = 'bootstrap/mail.sh'): void {
  const root = mkdtempSync(join(tmpdir(), 'mf-shellcheck-'));
  try {
    for (const f of files) {
      mkdirSync(dirname(join(root, f.path)), { recursive: true });
      writeFileSync(join(root, f.path), f.content);
    }
    const r = spawnSync('shellcheck', ['-x', '-s', 'bash', join(root, script)], { cwd: dirname(join(root, script)), encoding: 'utf8' });
    assert.ok(!r.error, `shellcheck is not installed (apt-get install shellcheck): ${r.error?.message}`);
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
