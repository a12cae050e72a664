#!/usr/bin/env bash
# Runs every test of the workspace on a fresh Debian 12 machine with a Rust
# toolchain: installs what the tests need, then `cargo test --workspace`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-deps.sh
export PATH="$PWD/target/venv/bin:$PATH"
cargo test --workspace --no-fail-fast "$@"
