#!/usr/bin/env bash
# Installs every system package the test suite and benchmarks talk to, by Debian package name.
# Idempotent: skips apt entirely when every package is already present (npm test runs it first).
# Services the packages ship (redis, slapd, dovecot, postfix, haproxy, glusterd) must not start: tests run
# their own instances on their own ports. A policy-rc.d that answers 101 ("action forbidden") keeps
# invoke-rc.d and deb-systemd-invoke from starting them during the install; it is removed afterwards. The
# script stops no process: a name (pkill -x redis-server) would also hit an operator's own services.
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
  openssh-server                    # geo-replication transport between storage hosts (test/dr/georep)
  strace                            # syscall order of Maildir delivery (test/store/maildir-sync-order)
  chromium                          # operator console end-to-end tests
  systemd-container debootstrap apt-cacher-ng  # the fleet harness (npm run test:fleet): Debian hosts under nspawn
  rspamd clamav-daemon clamav       # inbound filtering (spam, DKIM/SPF/DMARC, virus) through rspamd
  dnsmasq                           # local DNS zones for the SPF/DKIM/DMARC tests
)
# One dpkg-query for all (npm test calls this every run): unknown packages print nothing and count as missing.
# (dpkg-query exits 1 when any package is unknown, as on a fresh machine.)
installed=" $({ dpkg-query -W -f='${Package}:${Status}\n' "${PKGS[@]}" 2>/dev/null || true; } | sed -n 's/:install ok installed$//p' | tr '\n' ' ') "
missing=()
for p in "${PKGS[@]}"; do
  [[ "$installed" == *" $p "* ]] || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-system-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
echo "install-system-deps: installing ${missing[*]}"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
POLICY_RC_D="${MAILFLEET_POLICY_RC_D:-/usr/sbin/policy-rc.d}"
if [ ! -e "$POLICY_RC_D" ]; then
  # An existing policy-rc.d is the administrator's and stays as it is.
  trap '$SUDO rm -f "$POLICY_RC_D"' EXIT
  printf '#!/bin/sh\n# mailfleet install-system-deps.sh: no service starts while it installs packages\nexit 101\n' | $SUDO tee "$POLICY_RC_D" >/dev/null
  $SUDO chmod 755 "$POLICY_RC_D"
fi
# slapd must not create a database of its own; tests write their own slapd.conf.
echo 'slapd slapd/no_configuration boolean true' | $SUDO debconf-set-selections
echo 'postfix postfix/main_mailer_type select No configuration' | $SUDO debconf-set-selections
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}"
echo "install-system-deps: done"
