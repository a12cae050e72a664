#!/usr/bin/env bash
# Installs what the tests need on Debian 12: the Go exporters to compare
# against, promtool/prometheus, net-snmp, snmpsim, Prosody, nftables, ...
# Daemons in these packages are not started (policy-rc.d), so they cannot
# take the ports the tests or a user's exporters use.
set -euo pipefail

APT_PACKAGES=(
  prometheus                      # promtool and prometheus for e2e tests
  prometheus-node-exporter        # node_exporter 1.5.0, the golden reference
  prometheus-blackbox-exporter    # blackbox_exporter 0.23.0
  prometheus-snmp-exporter        # snmp_exporter 0.21.0
  prometheus-process-exporter     # process-exporter 0.7.10
  snmpd snmp                      # net-snmp agent and tools
  prosody lua-cjson               # Prosody 0.12 with mod_http_openmetrics
  dnsmasq-base                    # a real DNS server for the dns prober tests
  nftables iptables               # netfilter collector tests
  iproute2 util-linux             # ip netns / unshare
  systemd                         # systemd-analyze, systemd-socket-activate (not started)
  python3-venv python3-pip        # snmpsim
  gzip curl ca-certificates
)
PIP_PACKAGES=(snmpsim)
PIP_PACKAGES+=(pysmi)             # snmpsim 1.2 imports pysmi without depending on it (vigie-snmp tests)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-deps: installing ${missing[*]}"
  placed_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    placed_policy=1
  fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  if [ "$placed_policy" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
fi

# Debian starts nothing without systemd as PID 1 when policy-rc.d forbids it,
# but a machine that had the packages before may run them: that is fine, the
# tests use free ports.

# snmpsim lives in its own virtualenv under target/, so the system Python stays untouched.
VENV="${VIGIE_VENV:-$(dirname "$0")/../target/venv}"
if [ ! -x "$VENV/bin/snmpsim-command-responder" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "${PIP_PACKAGES[@]}"
fi
