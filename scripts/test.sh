#!/usr/bin/env bash
# Every test: unit, property and end-to-end (real recordings, real codecs).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo test --workspace --all-targets "$@"
# Every parser that reads input earmark did not write, fuzzed briefly from
# the committed seed corpus: a regression in one shows as a crash here.
# scripts/fuzz.sh SECONDS runs them for longer.
bash scripts/fuzz.sh 20
