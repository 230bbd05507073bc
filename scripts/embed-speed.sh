#!/usr/bin/env bash
# `earmark embed` against `audiowmark add`, file to file, side by side: a
# 10-minute 44.1 kHz stereo 16-bit WAV (a corpus recording, repeated), both
# tools run alternately RUNS times (default 15), wall clock per run, and the
# medians compared. Alternating keeps a busy neighbour on a shared machine
# from favouring either tool; each run writes a new file after a `sync`, so
# that neither pays for writing back the other's 100 MB output.
#   scripts/embed-speed.sh [AUDIOWMARK] [RUNS] [CORPUS_DIR]
# AUDIOWMARK defaults to `audiowmark` on PATH; without it only earmark runs.
set -euo pipefail
cd "$(dirname "$0")/.."
audiowmark=${1:-audiowmark}
runs=${2:-15}
corpus=${3:-../shared/corpus}
cargo build --release -q -p earmark-cli
earmark=$PWD/target/release/earmark
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source=$corpus/long_music_metal_44k_muldjord_armygeddon.flac
sox "$source" -b 16 "$work/part.wav" trim 0 150
sox "$work/part.wav" "$work/part.wav" "$work/part.wav" "$work/part.wav" "$work/input.wav"
"$earmark" keygen "$work/key" >/dev/null
have_audiowmark=false
if command -v "$audiowmark" >/dev/null 2>&1; then have_audiowmark=true; fi

seconds() { # command... → wall seconds
  local start end
  rm -f "$work/earmark.wav" "$work/audiowmark.wav"
  sync
  start=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN {printf "%.3f\n", b - a}'
}
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

for _ in $(seq "$runs"); do
  echo "earmark $(seconds "$earmark" embed "$work/input.wav" "$work/earmark.wav" \
    --key "$work/key" --payload 0123456789abcdef)"
  if $have_audiowmark; then
    echo "audiowmark $(seconds "$audiowmark" add "$work/input.wav" "$work/audiowmark.wav" \
      0123456789abcdef0123456789abcdef)"
  fi
done >"$work/times"
ours=$(awk '$1 == "earmark" {print $2}' "$work/times" | median)
echo "earmark embed:  median ${ours} s over $runs runs (600 s of 44.1 kHz stereo)"
if $have_audiowmark; then
  theirs=$(awk '$1 == "audiowmark" {print $2}' "$work/times" | median)
  echo "audiowmark add: median ${theirs} s over $runs runs"
  echo "ratio: $(awk -v a="$theirs" -v b="$ours" 'BEGIN {printf "%.2f", a / b}')× in earmark's favour"
fi
