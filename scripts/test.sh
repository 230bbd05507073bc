#!/usr/bin/env bash
# Every test: unit, property and end-to-end (real recordings, real codecs).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo test --workspace --all-targets "$@"
