#!/usr/bin/env bash
# Builds the four exporters (release) and runs them in the foreground on
# their default ports with the shipped configs. Ctrl-C stops all four.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins
BIN=target/release
pids=()
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait; }
trap stop INT TERM EXIT

start() { echo "starting $*"; "$@" & pids+=($!); }
start "$BIN/vigie-node-exporter"
start "$BIN/vigie-blackbox-exporter" --config.file=config/blackbox.yml
start "$BIN/vigie-snmp-exporter" --config.file=config/snmp.yml
start "$BIN/vigie-jitsi-exporter" --config.file=config/jitsi.yml
echo "node :9100/metrics  blackbox :9115/probe  snmp :9116/snmp  jitsi :9888/metrics  (Ctrl-C stops)"
wait -n "${pids[@]}" || true
