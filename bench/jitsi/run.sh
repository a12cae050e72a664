#!/usr/bin/env bash
# Benchmark of vigie-jitsi-exporter (by hand, not a test): median scrape
# latency over the slowest upstream fetch, and resident memory.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p vigie-jitsi-exporter --bin vigie-jitsi-exporter --example jitsi-bench
exec target/release/examples/jitsi-bench target/release/vigie-jitsi-exporter
