#!/usr/bin/env bash
# vigie-node-exporter vs Debian's prometheus-node-exporter (node_exporter
# 1.5.0), default collectors, side by side on this machine.
#
#   cargo build --release -p vigie-node-exporter
#   bench/node/bench.sh [SCRAPES]        # default 300 per exporter
#
# Both listen on free 127.0.0.1 ports; one keep-alive connection each;
# scrapes alternate (Go, Vigie, Go, ...) so both see the same machine
# state. Prints per exporter: CPU per scrape (utime+stime from
# /proc/PID/stat, cross-checked with /proc/PID/schedstat), median and p99
# latency, bytes, VmHWM; then the Vigie/Go ratios against the targets.
set -euo pipefail
N=${1:-300}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VIGIE=${VIGIE:-$ROOT/target/release/vigie-node-exporter}
GO=${GO:-/usr/bin/prometheus-node-exporter}
[ -x "$VIGIE" ] || { echo "build first: cargo build --release -p vigie-node-exporter" >&2; exit 1; }
[ -x "$GO" ] || { echo "$GO missing (apt install prometheus-node-exporter)" >&2; exit 1; }
exec python3 "$ROOT/bench/node/bench.py" "$N" "$GO" "$VIGIE"
