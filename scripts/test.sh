#!/usr/bin/env bash
# Every correctness test: unit, property and end-to-end (real recordings,
# real codecs), the replay of every fuzz seed and crash fixture, and the
# doctests. cargo-nextest runs each test in its own process under a clock
# (.config/nextest.toml): a test that hangs fails with its name.
#
#   scripts/test.sh            the README's test command
#   scripts/test.sh --full     also the full statistical matrices (docs/testing.md)
#   scripts/test.sh [--full] FILTER...   only the tests whose names match
#
# Builds with the `ci` profile (optimised, line tables only). Set
# CARGO_TARGET_DIR to keep the build outside the clone.
set -euo pipefail
cd "$(dirname "$0")/.."
nextest_profile=default
if [ "${1:-}" = "--full" ]; then
    export EARMARK_TEST_FULL=1
    nextest_profile=full
    shift
fi
source scripts/setup.sh
# The re-recording gate simulates its room with pyroomacoustics; the
# profiles' test scores them with ViSQOL.
EARMARK_PYTHON="${EARMARK_PYTHON:-$(bash scripts/setup.sh --perceptual)}"
export EARMARK_PYTHON
cargo nextest run --workspace --cargo-profile ci --profile "$nextest_profile" --lib --bins --tests "$@"
if [ $# -eq 0 ]; then
    cargo test --workspace --profile ci --doc
fi
