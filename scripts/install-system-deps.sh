#!/usr/bin/env bash
# Installs every system package the test suite and benchmarks talk to, by Debian package name.
# Idempotent: skips apt entirely when every package is already present.
set -euo pipefail
PKGS=(
  haproxy socat                     # proxy tier (issue: HAProxy tier)
  slapd ldap-utils                  # LDAP directory tests
  redis-server                      # fleet-wide counters
  glusterfs-server glusterfs-client # replicated storage tests
  postfix                           # smtp-source load generator + Postfix peer for bench/smtp
  dovecot-imapd dovecot-pop3d       # peer for bench/imap-idle
  swaks isync fetchmail getmail6    # real mail clients
  shellcheck rsync openssl ca-certificates procps psmisc iproute2
  strace                            # syscall order of Maildir delivery (test/store/maildir-sync-order)
  chromium                          # operator console end-to-end tests
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-system-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
echo "install-system-deps: installing ${missing[*]}"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
# slapd must not create a database of its own; tests write their own slapd.conf.
echo 'slapd slapd/no_configuration boolean true' | $SUDO debconf-set-selections
echo 'postfix postfix/main_mailer_type select No configuration' | $SUDO debconf-set-selections
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}"
# Debian starts nothing without systemd, but stop anything an install script may have launched.
for svc in redis-server dovecot postfix slapd haproxy glusterd; do pkill -x "$svc" 2>/dev/null || true; done
echo "install-system-deps: done"
