/**
 * Filtering on cloud mail nodes (docs/filtering.md, "On the mail nodes"): when the spec has `filtering`
 * with rspamd on the node itself (a loopback URL), the mail bootstrap installs Debian's rspamd (and
 * clamav-daemon with clamav-freshclam when filtering.antivirus is on), runs rspamd with the same config the
 * local platform and the tests use (lib/filter/rspamd-config.ts), installs each domain's DKIM key from its
 * secret, and waits for rspamd to answer before mailfleetd starts. An rspamd URL elsewhere (a shared
 * scanner the operator runs): nothing is installed.
 *
 * Decisions (docs/filtering.md): Bayes statistics go to the fleet's Redis when the spec provisions one
 * (ElastiCache, TLS + AUTH): rspamd 3.4 speaks no TLS to Redis, so a local socat tunnel carries it, and the
 * AUTH token is written at boot into a file the config includes. Without a provisioned Redis, no Redis for
 * rspamd (Bayes, fuzzy storage, rate limits, greylisting and the history are off: per-node state would
 * diverge between nodes and die with each node); fuzzy storage, rate limits and the rest stay off either way. ClamAV
 * signatures from the ClamAV mirror through Debian's freshclam service (the one download that is not a
 * Debian package); clamd starts once signatures are there (a path unit), and until then rspamd's antivirus
 * module reports a failure symbol and mail is scanned for spam only.
 */
import type { Plan } from '../plan/types.js';
import { NODE_FILES_DIR, nameRoot, provisionsRedis, redisEndpointParameter, secretNames, shq, ssmPrefix, type RenderedFile } from '../render/node-layout.js';
import { effectiveFilterPolicy } from '../spec/defaults.js';
import { renderRspamdConfig, type RspamdConfigProps } from './rspamd-config.js';

/**
 * Where the node's rspamd config lives (LOCAL_CONFDIR): a folder of our own beside the package's files (which
 * stay as shipped), readable by rspamd's user: /etc/mailfleet is the daemon's, closed to other users.
 */
export const NODE_RSPAMD_DIR = '/etc/rspamd/mailfleet';
/** DKIM private keys on the node, `<domain>.<selector>.key`, readable by rspamd only. */
export const NODE_DKIM_DIR = '/var/lib/mailfleet/dkim';
/** Debian's clamd socket (clamav-daemon.socket). */
export const NODE_CLAMD_SOCKET = '/run/clamav/clamd.ctl';
/** Path unit that starts clamd once freshclam has written the signatures. */
export const CLAMD_START_PATH_UNIT = 'mailfleet-clamd-start.path';
/** Where the socat tunnel to the fleet's Redis (TLS) listens for rspamd on the node. */
export const NODE_BAYES_REDIS_TUNNEL = '127.0.0.1:6380';
/** The tunnel's unit; its EnvironmentFile holds REDIS_ENDPOINT (host:port from SSM, written at boot). */
export const BAYES_REDIS_TUNNEL_UNIT = 'mailfleet-rspamd-redis.service';
export const BAYES_REDIS_TUNNEL_ENV = '/etc/default/mailfleet-rspamd-redis';
/** `password = "<AUTH token>";`, written at boot, readable by rspamd only; included by classifier-bayes.conf. */
export const NODE_BAYES_REDIS_PASSWORD = `${NODE_RSPAMD_DIR}/redis-password.inc`;

/** Longest wait for rspamd to answer /ping at boot (it compiles the stock public-suffix list first). */
export const RSPAMD_READY_SECONDS = 180;

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** The node's rspamd normal worker address (host:port), or undefined when the node runs no rspamd. */
export function nodeRspamdBind(plan: Plan): string | undefined {
  const f = plan.spec.filtering;
  if (!f) return undefined;
  const url = new URL(f.rspamd.url);
  if (!LOOPBACK.has(url.hostname)) return undefined;
  return `${url.hostname === 'localhost' ? '127.0.0.1' : url.hostname}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`;
}

/**
 * Bayes in the fleet's Redis: only when the spec provisions Redis (`redis.provision: elasticache`) and the
 * node runs rspamd. An `external` Redis is not used for Bayes (its credentials are in the spec's URL and
 * would have to be copied into rspamd's config: not done).
 */
export function nodeBayesRedis(plan: Plan): RspamdConfigProps['bayesRedis'] {
  const f = plan.spec.filtering;
  if (!f || !nodeRspamdBind(plan) || !provisionsRedis(plan)) return undefined;
  return { servers: NODE_BAYES_REDIS_TUNNEL, passwordFile: NODE_BAYES_REDIS_PASSWORD, spamThreshold: effectiveFilterPolicy(f).rejectScore };
}

/** Secret holding a domain's DKIM private key (PEM), created by the operator (docs/filtering.md). */
export function dkimSecretName(plan: Pick<Plan, 'platform' | 'namePrefix'>, domain: string): string {
  return `${nameRoot(plan)}/dkim/${domain.toLowerCase()}`;
}

/** DKIM secrets a mail node reads at boot (none when the spec does not sign). */
export function dkimSecretsReadBy(plan: Plan): string[] {
  const f = plan.spec.filtering;
  if (!f?.dkim.sign || !nodeRspamdBind(plan)) return [];
  return plan.spec.domains.map((d) => dkimSecretName(plan, d.name));
}

/** The node-files of filtering: rspamd's config and the units, under rspamd/ and systemd/. */
export function filteringNodeFiles(plan: Plan): RenderedFile[] {
  const bind = nodeRspamdBind(plan);
  const f = plan.spec.filtering;
  if (!bind || !f) return [];
  const conf = renderRspamdConfig({
    normalBind: bind,
    dkimKeyDir: NODE_DKIM_DIR,
    dkimSelector: f.dkim.selector,
    dkimSign: f.dkim.sign,
    ...(f.antivirus ? { clamdSocket: NODE_CLAMD_SOCKET } : {}),
    // One normal worker per core (rspamd's default): the node's scanning rate.
    workers: 'cores',
    bayesRedis: nodeBayesRedis(plan),
  });
  const files: RenderedFile[] = Object.entries(conf).map(([name, content]) => ({ path: `rspamd/${name}`, content }));
  files.push({
    path: 'systemd/rspamd-mailfleet.conf',
    content: `# mailfleet: Debian's rspamd unit with mailfleet's config (${NODE_RSPAMD_DIR}); /etc/rspamd stays the package's.
[Service]
ExecStart=
ExecStart=/usr/bin/rspamd -c ${NODE_RSPAMD_DIR}/rspamd.conf --var=LOCAL_CONFDIR=${NODE_RSPAMD_DIR} -f
`,
  });
  if (nodeBayesRedis(plan))
    files.push({
      path: `systemd/${BAYES_REDIS_TUNNEL_UNIT}`,
      content: `# mailfleet: rspamd's Bayes statistics to the fleet's Redis. rspamd 3.4 speaks plain Redis only and
# ElastiCache only TLS: socat takes rspamd's connections on ${NODE_BAYES_REDIS_TUNNEL} and opens a verified
# TLS connection (the endpoint's name against its certificate) for each.
[Unit]
Description=TLS tunnel from rspamd to the fleet's Redis
After=network-online.target
Wants=network-online.target
Before=rspamd.service

[Service]
EnvironmentFile=${BAYES_REDIS_TUNNEL_ENV}
ExecStart=/usr/bin/socat TCP-LISTEN:${NODE_BAYES_REDIS_TUNNEL.split(':')[1]},bind=${NODE_BAYES_REDIS_TUNNEL.split(':')[0]},reuseaddr,fork OPENSSL:\${REDIS_ENDPOINT},verify=1,cafile=/etc/ssl/certs/ca-certificates.crt
Restart=always
RestartSec=2
DynamicUser=yes

[Install]
WantedBy=multi-user.target
`,
    });
  if (f.antivirus)
    files.push(
      {
        path: `systemd/${CLAMD_START_PATH_UNIT}`,
        content: `# mailfleet: clamd starts when freshclam has written its signatures (Debian's unit skips a start
# without them, and nothing would start it again).
[Unit]
Description=Start clamd once ClamAV signatures exist

[Path]
PathExistsGlob=/var/lib/clamav/daily.c[vl]d
Unit=clamav-daemon.service

[Install]
WantedBy=multi-user.target
`,
      },
    );
  return files;
}

/**
 * The filtering block of bootstrap/mail.sh (shell text, runs after the daemon config is installed and
 * before mailfleetd starts); empty when the node runs no rspamd.
 */
export function filteringBootstrap(plan: Plan): string {
  const bind = nodeRspamdBind(plan);
  const f = plan.spec.filtering;
  if (!bind || !f) return '';
  const files = NODE_FILES_DIR;
  const lines: string[] = [
    '# --- filtering (lib/filter/node-setup.ts): rspamd, ClamAV, DKIM keys; docs/filtering.md ---',
    `pkg_install rspamd${f.antivirus ? ' clamav-daemon clamav-freshclam' : ''}${nodeBayesRedis(plan) ? ' socat' : ''}`,
    `install -d -m 0755 ${NODE_RSPAMD_DIR} ${NODE_RSPAMD_DIR}/local.d`,
    `install -m 0644 "\${MAILFLEET_FILES}/rspamd/rspamd.conf" ${NODE_RSPAMD_DIR}/rspamd.conf`,
    `install -m 0644 "\${MAILFLEET_FILES}"/rspamd/local.d/* ${NODE_RSPAMD_DIR}/local.d/`,
    'install -d -m 0755 /etc/systemd/system/rspamd.service.d',
    `install -m 0644 "\${MAILFLEET_FILES}/systemd/rspamd-mailfleet.conf" /etc/systemd/system/rspamd.service.d/mailfleet.conf`,
  ];
  if (f.dkim.sign) {
    lines.push(
      `install -d -m 0750 -o _rspamd -g _rspamd ${NODE_DKIM_DIR}`,
      '# A domain without its key secret sends unsigned mail (loudly): the operator creates it (docs/filtering.md).',
      'dkim_key() {',
      '  local key',
      '  if ! key=$(aws secretsmanager get-secret-value --secret-id "$1" --query SecretString --output text 2>/dev/null) || [ -z "${key}" ] || [ "${key}" = None ]; then',
      '    echo "mailfleet bootstrap: WARNING: no DKIM key in secret $1: mail of $2 leaves unsigned"',
      '    return 0',
      '  fi',
      '  (umask 077 && printf \'%s\\n\' "${key}" >"$3")',
      '  chown _rspamd:_rspamd "$3"',
      '}',
      ...plan.spec.domains.map((d) => `dkim_key ${shq(dkimSecretName(plan, d.name))} ${shq(d.name)} ${shq(`${NODE_DKIM_DIR}/${d.name.toLowerCase()}.${f.dkim.selector}.key`)}`),
    );
  }
  if (f.antivirus)
    lines.push(
      '# Signatures come from the ClamAV mirror through Debian\'s freshclam service (started by the package);',
      '# clamd starts when they are there, now or later, and mail is not held back meanwhile.',
      `install_units ${CLAMD_START_PATH_UNIT}`,
      '# Without signatures clamd cannot start, but its socket (started by the package) would take rspamd\'s',
      '# connections and hold them until rspamd times out: stopped, rspamd fails over at once. Starting clamd',
      '# (the path unit) starts the socket again.',
      `if ! compgen -G '/var/lib/clamav/daily.c[vl]d' >/dev/null; then systemctl stop clamav-daemon.socket || true; fi`,
      'systemctl enable --now clamav-freshclam.service',
      `systemctl enable --now ${CLAMD_START_PATH_UNIT}`,
    );
  if (nodeBayesRedis(plan))
    lines.push(
      '# Bayes statistics in the fleet\'s Redis (ElastiCache, TLS + AUTH): the tunnel to this region\'s endpoint, and',
      '# the AUTH token where classifier-bayes.conf includes it (readable by rspamd only, never in the bundle).',
      `bayes_redis_endpoint=$(param ${shq(redisEndpointParameter(plan).slice(ssmPrefix(plan).length + 1))})`,
      'if [ -z "${bayes_redis_endpoint}" ] || [ "${bayes_redis_endpoint}" = None ]; then',
      `  echo "mailfleet bootstrap: no Redis endpoint in ${redisEndpointParameter(plan)}" >&2`,
      '  exit 1',
      'fi',
      `printf 'REDIS_ENDPOINT=%s\\n' "\${bayes_redis_endpoint}" >${BAYES_REDIS_TUNNEL_ENV}`,
      `bayes_redis_auth=$(secret ${shq(secretNames(plan).redisAuth)})`,
      `(umask 027 && printf 'password = "%s";\\n' "\${bayes_redis_auth}" >${NODE_BAYES_REDIS_PASSWORD})`,
      `chgrp _rspamd ${NODE_BAYES_REDIS_PASSWORD}`,
      `install_units ${BAYES_REDIS_TUNNEL_UNIT}`,
      `systemctl enable --now ${BAYES_REDIS_TUNNEL_UNIT}`,
    );
  lines.push(
    'systemctl daemon-reload',
    'systemctl enable rspamd.service',
    "# The package started rspamd on Debian's stock config; if that failed fast enough to hit systemd's start",
    '# limit, a plain restart is refused: clear it first.',
    'systemctl reset-failed rspamd.service || true',
    'systemctl restart rspamd.service',
    '# mailfleetd defers or passes unscanned mail while rspamd is down (filtering.rspamd.onUnavailable): wait a',
    '# while, but never fail the boot on it: rspamd\'s first start compiles its regexp database, which took',
    '# minutes on a loaded 2-core host in the fleet harness, and the daemon is right to start meanwhile.',
    'rspamd_ready=""',
    `for _ in $(seq 1 ${RSPAMD_READY_SECONDS / 2}); do`,
    `  if [ "$(curl -fsS -m 2 http://${bind}/ping 2>/dev/null)" = pong ]; then`,
    '    rspamd_ready=yes',
    '    break',
    '  fi',
    '  sleep 2',
    'done',
    'if [ -z "${rspamd_ready}" ]; then',
    `  echo "mailfleet bootstrap: WARNING: rspamd does not answer on ${bind} after ${RSPAMD_READY_SECONDS} s; mailfleetd starts and applies filtering.rspamd.onUnavailable until it does" >&2`,
    '  journalctl -u rspamd.service -n 20 --no-pager >&2 || true',
    'fi',
    `# --- end of filtering (files from ${files}) ---`,
  );
  return `${lines.join('\n')}\n`;
}
