/**
 * Filtering on cloud mail nodes, judged on what the engines ship: the mail node bundle (nodeFiles) and its
 * bootstrap/mail.sh. The bundle's rspamd config is run by a real rspamd (with clamd and the private DNS
 * server of test/harness/rspamd.ts, the node's fixed paths and port swapped for the test's), and must
 * refuse EICAR through ClamAV, refuse GTUBE, and DKIM-sign with a key where the bootstrap puts it.
 */
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ensureDkimKey } from '../../lib/filter/dkim.js';
import { CLAMD_START_PATH_UNIT, NODE_CLAMD_SOCKET, NODE_DKIM_DIR, NODE_RSPAMD_DIR, dkimSecretName } from '../../lib/filter/node-setup.js';
import { RspamdClient } from '../../lib/filter/rspamd-client.js';
import { nodeAccess } from '../../lib/plan/node-access.js';
import { buildPlan, type Plan } from '../../lib/plan/index.js';
import { nodeFiles } from '../../lib/render/node-files.js';
import type { RenderedFile } from '../../lib/render/node-layout.js';
import { loadSpec, parseSpec } from '../../lib/spec/index.js';
import { EICAR, GTUBE, filterStackUnavailable, startFilterStack, type FilterStack } from '../harness/rspamd.js';
import { assertBundleShellchecks } from '../harness/shellcheck.js';

const missing = filterStackUnavailable();
if (missing) throw new Error(`filtering tests need rspamd, clamd and dnsmasq (${missing}): scripts/install-system-deps.sh`);

function planWith(filtering: unknown): Plan {
  const base = loadSpec('examples/single-region.yaml').spec;
  return buildPlan(parseSpec(JSON.stringify({ ...base, ...(filtering === undefined ? {} : { filtering }) }), 'filtering.yaml'));
}
const filtered = planWith({});
const bundle = nodeFiles(filtered, 'mail', 'primary');
const file = (files: readonly RenderedFile[], path: string) => files.find((f) => f.path === path)?.content;
const mailSh = file(bundle, 'bootstrap/mail.sh')!;
const domain = filtered.spec.domains[0]!.name;

describe('mail node bootstrap with filtering: what it installs and in which order', () => {
  it('installs rspamd, clamav-daemon and clamav-freshclam, after the daemon config and before mailfleetd starts', () => {
    // socat: the TLS tunnel of Bayes in the fleet's Redis, which the example provisions (bayes-redis.test.ts).
    assert.match(mailSh, /^pkg_install rspamd clamav-daemon clamav-freshclam socat$/m);
    const block = mailSh.indexOf('# --- filtering');
    assert.ok(block > mailSh.indexOf('mailfleetd.json'), 'after the daemon config');
    assert.ok(block < mailSh.indexOf('systemctl enable --now mailfleetd.service'), 'before the daemon');
    // mailfleetd starts only once rspamd answers where the daemon config points.
    const url = (JSON.parse(file(bundle, 'mailfleetd.json')!) as { filtering: { rspamd: { url: string } } }).filtering.rspamd.url;
    const bind = /bind_socket = "([^"]+)"/.exec(file(bundle, 'rspamd/rspamd.conf')!)![1]!;
    assert.equal(url.replace(/\/$/, ''), `http://${bind}`);
    assert.ok(mailSh.indexOf(`http://${bind}/ping`) < mailSh.indexOf('systemctl enable --now mailfleetd.service'));
    // rspamd runs the bundle's config: the drop-in points Debian's unit at where the block installs it.
    assert.match(file(bundle, 'systemd/rspamd-mailfleet.conf')!, new RegExp(`^ExecStart=/usr/bin/rspamd -c ${NODE_RSPAMD_DIR}/rspamd\\.conf --var=LOCAL_CONFDIR=${NODE_RSPAMD_DIR} -f$`, 'm'));
    assert.match(mailSh, new RegExp(`"\\$\\{MAILFLEET_FILES\\}"/rspamd/local\\.d/\\* ${NODE_RSPAMD_DIR}/local\\.d/`));
    // clamd waits for freshclam's signatures through the path unit, which the bundle carries.
    assert.match(file(bundle, `systemd/${CLAMD_START_PATH_UNIT}`)!, /^PathExistsGlob=\/var\/lib\/clamav\/daily\.c\[vl\]d$/m);
    assert.match(mailSh, new RegExp(`systemctl enable --now ${CLAMD_START_PATH_UNIT.replace('.', '\\.')}`));
  });

  it('reads each domain\'s DKIM key from its secret, which the mail node role may read', () => {
    const secret = dkimSecretName(filtered, domain);
    assert.ok(mailSh.includes(`dkim_key '${secret}' '${domain}' '${NODE_DKIM_DIR}/${domain}.mailfleet.key'`), mailSh);
    const reads = nodeAccess(filtered, 'mail', 'primary').statements.find((s) => s.actions.includes('secretsmanager:GetSecretValue'))!;
    assert.ok(reads.targets.some((t) => t.kind === 'secret' && t.name === secret));
  });

  it('the mail bundle passes shellcheck with the filtering block', () => {
    assertBundleShellchecks(bundle);
  });

  it('without filtering, or with rspamd elsewhere, the node installs no scanner', () => {
    for (const plan of [planWith(undefined), planWith({ rspamd: { url: 'http://10.0.0.5:11333' } })]) {
      const files = nodeFiles(plan, 'mail', 'primary');
      assert.doesNotMatch(file(files, 'bootstrap/mail.sh')!, /rspamd|clamav/);
      assert.equal(files.filter((f) => f.path.startsWith('rspamd/')).length, 0);
    }
    const noAv = nodeFiles(planWith({ antivirus: false, dkim: { sign: false } }), 'mail', 'primary');
    assert.match(file(noAv, 'bootstrap/mail.sh')!, /^pkg_install rspamd socat$/m);
    assert.doesNotMatch(file(noAv, 'bootstrap/mail.sh')!, /clamav|dkim_key/);
    assert.equal(file(noAv, 'rspamd/local.d/antivirus.conf'), undefined);
  });
});

describe('the rspamd config of the mail node bundle, run by a real rspamd with ClamAV', { timeout: 120_000 }, () => {
  let stack: FilterStack;
  let client: RspamdClient;
  before(async () => {
    stack = await startFilterStack({
      rspamdFiles: (s) => {
        const files: Record<string, string> = {};
        // Bayes in Redis is run by bayes-redis.test.ts (with a Redis to talk to); here it would reach none.
        for (const f of bundle.filter((x) => x.path.startsWith('rspamd/') && x.path !== 'rspamd/local.d/classifier-bayes.conf')) {
          // The node's fixed port and paths become the test's; everything else is the bundle's text.
          files[f.path.slice('rspamd/'.length)] = f.content
            .replaceAll(/"127\.0\.0\.1:\d+"/g, JSON.stringify(s.normalBind))
            .replaceAll(NODE_CLAMD_SOCKET, s.clamdSocket!)
            .replaceAll(NODE_DKIM_DIR, s.dkimKeyDir);
        }
        // Test-only: the private DNS server, and a short public-suffix list (the stock one takes 20 s).
        files['local.d/options.inc'] = `${files['local.d/options.inc'] ?? ''}dns { nameserver = ["${s.nameservers![0]}"]; timeout = 1s; }\nurl_tld = ${JSON.stringify(s.tldFile)};\n`;
        return files;
      },
    });
    // The key where the bootstrap writes it (NODE_DKIM_DIR/<domain>.<selector>.key).
    ensureDkimKey(stack.dkimKeyDir, domain, 'mailfleet');
    chmodSync(stack.dkimKeyDir, 0o755);
    client = new RspamdClient({ url: stack.url, timeoutMs: 15_000 });
  });
  after(async () => {
    client?.close();
    await stack?.stop();
  });

  const check = (body: string, user?: string) =>
    client.check(
      { ip: '198.51.100.7', helo: 'client.test', from: user ?? 'someone@elsewhere.test', rcpt: [`bob@${domain}`], queueId: 'q1', mtaName: 'mx.test', ...(user ? { user } : {}) },
      Buffer.from(`From: ${user ?? 'someone@elsewhere.test'}\r\nTo: bob@${domain}\r\nSubject: t\r\nMessage-ID: <1@client.test>\r\nDate: ${new Date().toUTCString()}\r\n\r\n${body}\r\n`),
    );

  it('EICAR: rejected with the ClamAV symbol (the antivirus module reaches clamd at the configured socket)', async () => {
    const r = await check(EICAR);
    assert.equal(r.action, 'reject');
    assert.ok(Object.keys(r.symbols ?? {}).includes('CLAM_VIRUS'), JSON.stringify(r.symbols));
  });

  it('GTUBE rejected; ham gets no action (the spec\'s thresholds decide, not rspamd\'s)', async () => {
    assert.equal((await check(GTUBE)).action, 'reject');
    assert.equal((await check('hello bob, see you on Tuesday')).action, 'no action');
  });

  it('submission mail is DKIM-signed with the key where the bootstrap puts it', async () => {
    const r = await check('hello from alice', `alice@${domain}`);
    const added = JSON.stringify([r.milter?.add_headers ?? {}, r['dkim-signature'] ?? '']);
    assert.match(added, new RegExp(`d=${domain.replaceAll('.', '\\.')};\\\\r\\\\n\\\\ts=mailfleet;`));
  });
});

describe('a node before freshclam has fetched signatures: clamd not running', { timeout: 120_000 }, () => {
  let stack: FilterStack;
  let client: RspamdClient;
  before(async () => {
    stack = await startFilterStack({
      antivirus: false,
      rspamdFiles: (s) => {
        const files: Record<string, string> = {};
        for (const f of bundle.filter((x) => x.path.startsWith('rspamd/') && x.path !== 'rspamd/local.d/classifier-bayes.conf'))
          files[f.path.slice('rspamd/'.length)] = f.content
            .replaceAll(/"127\.0\.0\.1:\d+"/g, JSON.stringify(s.normalBind))
            // Nothing listens here: what rspamd meets while the bootstrap keeps clamd's socket stopped.
            .replaceAll(NODE_CLAMD_SOCKET, join(s.dkimKeyDir, 'no-clamd.sock'))
            .replaceAll(NODE_DKIM_DIR, s.dkimKeyDir);
        files['local.d/options.inc'] = `${files['local.d/options.inc'] ?? ''}dns { nameserver = ["${s.nameservers![0]}"]; timeout = 1s; }\nurl_tld = ${JSON.stringify(s.tldFile)};\n`;
        return files;
      },
    });
    client = new RspamdClient({ url: stack.url, timeoutMs: 15_000 });
  });
  after(async () => {
    client?.close();
    await stack?.stop();
  });

  it('mail is scanned for spam only and answered at once (not held until a timeout), GTUBE still refused', async () => {
    const req = { ip: '198.51.100.7', helo: 'client.test', from: 'someone@elsewhere.test', rcpt: [`bob@${domain}`], queueId: 'q2', mtaName: 'mx.test' };
    const msg = (body: string) => Buffer.from(`From: someone@elsewhere.test\r\nTo: bob@${domain}\r\nSubject: t\r\n\r\n${body}\r\n`);
    const t0 = performance.now();
    const r = await client.check(req, msg(EICAR));
    // Generous for a loaded machine; rspamd's antivirus timeout would be 10 s or more.
    assert.ok(performance.now() - t0 < 5000, `${(performance.now() - t0).toFixed(0)} ms`);
    assert.notEqual(r.action, 'reject');
    assert.ok(!Object.keys(r.symbols ?? {}).includes('CLAM_VIRUS'));
    assert.equal((await client.check(req, msg(GTUBE))).action, 'reject');
  });
});

describe('rspamd (user _rspamd) can reach what the bootstrap gives it', () => {
  it('no folder the bootstrap closes to other users (0750, 0700) holds rspamd\'s config or DKIM keys', () => {
    const closed = [...mailSh.matchAll(/install -d -m 07[0-5]0 (?:-o \S+ -g \S+ )?([^\n]+)/g)].flatMap((m) => m[1]!.split(' ').filter((p) => p.startsWith('/')));
    assert.ok(closed.includes('/etc/mailfleet'), closed.join(' '));
    for (const dir of closed)
      for (const own of [NODE_RSPAMD_DIR, NODE_DKIM_DIR])
        if (own !== dir) assert.ok(!own.startsWith(`${dir}/`), `${own} is under ${dir}, which _rspamd cannot enter`);
  });
});
