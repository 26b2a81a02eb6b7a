/**
 * The mail node's bootstrap/health.sh, run as rendered: in a private mount and network namespace (a tmpfs
 * store at /srv/mail, a mailfleet user in a bind-mounted passwd, loopback only) against a stand-in
 * /healthz on the daemon's admin port. The node's log is what an operator reads when the group replaces a
 * node, so a 503 (the daemon up, a dependency down) must say so and not "does not answer".
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DAEMON_ADMIN_PORT, MAIL_MOUNT } from '../../lib/render/node-layout.js';
import { nodeFiles } from '../../lib/render/node-files.js';
import { single } from '../constructs/fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'mf-health-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const script = nodeFiles(single(), 'mail', 'primary').find((f) => f.path === 'bootstrap/health.sh')!.content;
writeFileSync(join(dir, 'health.sh'), script, { mode: 0o755 });
writeFileSync(join(dir, 'passwd'), `${readFileSync('/etc/passwd', 'utf8')}mailfleet:x:64999:64999::/nonexistent:/usr/sbin/nologin\n`);
writeFileSync(join(dir, 'group'), `${readFileSync('/etc/group', 'utf8')}mailfleet:x:64999:\n`);

/** Runs health.sh with a /healthz stand-in answering `status` (or none when `status` is undefined). */
function runHealth(status: number | undefined): { code: number | null; stderr: string } {
  const server =
    status === undefined
      ? ''
      : `python3 -c '
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"{\\"status\\":\\"failing\\",\\"message\\":\\"content filter failing: rspamd does not answer /ping\\"}\\n"
        self.send_response(${status}); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", ${DAEMON_ADMIN_PORT}), H).serve_forever()
' & pid=$!; for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:${DAEMON_ADMIN_PORT}/ && break; sleep 0.1; done;`;
  const inner = `set -e
mount --make-rprivate /
mount -t tmpfs tmpfs /srv
mkdir -p ${MAIL_MOUNT}
mount -t tmpfs tmpfs ${MAIL_MOUNT}
mkdir -p ${MAIL_MOUNT}/.health && chown 64999:64999 ${MAIL_MOUNT}/.health
mount --bind ${dir}/passwd /etc/passwd
mount --bind ${dir}/group /etc/group
ip link set lo up
${server}
set +e
bash ${dir}/health.sh; rc=$?
[ -n "\${pid:-}" ] && kill "\${pid}"
exit $rc`;
  // Debian ships /srv; the tmpfs over it keeps the host's /srv untouched.
  const r = spawnSync('unshare', ['--mount', '--net', '--fork', 'bash', '-c', inner], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stderr: r.stderr };
}

describe('mail node health.sh (rendered, run in a namespace)', () => {
  test('GIVEN /healthz answers 200 WHEN the check runs THEN it passes', () => {
    const r = runHealth(200);
    assert.equal(r.code, 0, r.stderr);
  });

  test('GIVEN /healthz answers 503 WHEN the check runs THEN it fails naming the status and the daemon\'s reason, not "does not answer"', () => {
    const r = runHealth(503);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /reports unhealthy \(HTTP 503\)/);
    assert.match(r.stderr, /rspamd does not answer \/ping/);
    assert.doesNotMatch(r.stderr, /the daemon does not answer/);
  });

  test('GIVEN nothing listens on the admin port WHEN the check runs THEN it fails saying the daemon does not answer', () => {
    const r = runHealth(undefined);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /the daemon does not answer on 127\.0\.0\.1:/);
  });
});
