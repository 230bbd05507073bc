#!/usr/bin/env bash
# Peak memory of `earmark mark`: a 20-minute 48 kHz stereo master (the
# bundled metal excerpt, resampled and looped by sox) marked for 8
# recipients on 2 threads. Prints the peak resident memory against the
# decoded master's size (20 min × 48000 Hz × 2 channels × 4 bytes) and fails
# if the ratio reaches 2. Needs about 2.5 GB of free disk for the copies.
#   scripts/mark-memory.sh [MINUTES] [RECIPIENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-20}
recipients=${2:-8}
source scripts/setup.sh
cargo build --release -q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
seconds=$((minutes * 60))
sox tests/fixtures/music_metal_44k_muldjord_chaos_god.wav -r 48000 -c 2 "$work/master.flac" \
  repeat $((seconds / 15 + 1)) trim 0 "$seconds"
export EARMARK_HOME="$work/home"
bin=target/release/earmark
"$bin" init >/dev/null
for i in $(seq 1 "$recipients"); do "$bin" recipient add "recipient$i" >/dev/null; done
start=$(date +%s.%N)
EARMARK_PEAK_FILE="$work/peak" RAYON_NUM_THREADS=2 "$bin" mark "$work/master.flac" --all --out "$work/copies" >/dev/null
end=$(date +%s.%N)
peak_kb=$(cat "$work/peak")
decoded_bytes=$((seconds * 48000 * 2 * 4))
python3 - "$peak_kb" "$decoded_bytes" "$minutes" "$recipients" "$start" "$end" <<'PY'
import sys
peak_kb, decoded, minutes, recipients, start, end = sys.argv[1:]
peak = int(peak_kb) * 1024
ratio = peak / int(decoded)
print(f"mark of a {minutes}-minute 48 kHz stereo master for {recipients} recipients on 2 threads: "
      f"peak {peak / 1e6:.0f} MB against {int(decoded) / 1e6:.0f} MB decoded ({ratio:.2f}x), "
      f"{float(end) - float(start):.1f} s")
sys.exit(0 if ratio < 2 else 1)
PY
