#!/usr/bin/env bash
# Regenerates BENCHMARKS.md: the full attack suite plus informed tracing's
# channels (every excerpt traced blind and informed), false alarms, quality
# (with ViSQOL and PESQ) and speed on ../shared/corpus, seed 1. Every figure
# in BENCHMARKS.md comes from this one command. Reports and plots go to
# bench-out/. Takes about 25 minutes on two cores.
#   scripts/benchmarks.sh [CORPUS_DIR] [extra tracemark bench options...]
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-../shared/corpus}; shift || true
python=$(scripts/setup.sh --perceptual)
cargo build --release -q
TRACEMARK_PYTHON="$python" target/release/tracemark bench --corpus "$corpus" --suite full --informed --seed 1 \
  --perceptual --out bench-out --markdown BENCHMARKS.md "$@"
