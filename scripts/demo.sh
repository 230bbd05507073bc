#!/usr/bin/env bash
# The main job on a bundled recording: make a key, mark the recording, damage
# the marked copy the way a leak would (MP3 at 64 kbit/s, then a 10-second
# excerpt), and read the mark back.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release -q -p tracemark-cli
tm=target/release/tracemark
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
input=tests/fixtures/music_metal_44k_muldjord_chaos_god.wav

echo "== keygen"
$tm keygen "$work/demo.key"
echo "== embed payload 00c0ffee00c0ffee into $input"
$tm embed "$input" "$work/marked.wav" --key "$work/demo.key" --payload 00c0ffee00c0ffee
echo "== leak: MP3 64 kbit/s, then a 10 s excerpt from 3.7 s"
ffmpeg -hide_banner -loglevel error -y -i "$work/marked.wav" -c:a libmp3lame -b:a 64k "$work/leak.mp3"
ffmpeg -hide_banner -loglevel error -y -i "$work/leak.mp3" -ss 3.7 -t 10 "$work/excerpt.wav"
echo "== extract from the excerpt"
$tm extract "$work/excerpt.wav" --key "$work/demo.key"
echo "== the unmarked original, for contrast (exit code 3 = no watermark)"
$tm extract "$input" --key "$work/demo.key" || echo "exit code $?"
