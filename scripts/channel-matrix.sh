#!/usr/bin/env bash
# Robustness matrix for the engine: for each corpus recording long enough,
# embed, damage with a real codec or effect (ffmpeg/sox), cut a random excerpt
# (seeded by file and attack name), extract, and print OK / no(best pilot z) /
# WRONG per channel. Usage:
#   scripts/channel-matrix.sh CORPUS_DIR EXCERPT_S "attack ..." [files...]
# Attacks: clean mp3_64 mp3_128 mp3_320 aac_64 opus_24 opus_16v opus_12v
#          vorbis_64 rs8k rs16k rs22k rs48k phone amr gsm noise20 pink20
#          gain_p10 gain_m10 speed105 speed95 tempo105 tempo95 pitch100 pitchm100
#          opus16v_mp3_128
# This is a stop-gap until `tracemark bench` (issue 3) exists.
set -euo pipefail
corpus=$1; len=$2; attacks=$3; shift 3
here=$(cd "$(dirname "$0")/.." && pwd)
tm=${TRACEMARK:-$here/target/release/tracemark}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# A fixed key (MATRIX_KEY=path) makes two builds comparable; otherwise a fresh one.
if [ -n "${MATRIX_KEY:-}" ]; then cp "$MATRIX_KEY" "$work/k.key"; else $tm keygen "$work/k.key" >/dev/null; fi

attack() { # in out name
  local in=$1 out=$2 a=$3 sr ch t=$work/t
  sr=$(soxi -r "$in"); mkdir -p "$t"
  local ff="ffmpeg -hide_banner -loglevel error -y"
  case $a in
    clean) cp "$in" "$out";;
    mp3_*) $ff -i "$in" -c:a libmp3lame -b:a ${a#mp3_}k "$t/a.mp3"; $ff -i "$t/a.mp3" -ar "$sr" "$out";;
    aac_64) $ff -i "$in" -c:a aac -b:a 64k "$t/a.m4a"; $ff -i "$t/a.m4a" -ar "$sr" "$out";;
    opus_24) $ff -i "$in" -c:a libopus -b:a 24k "$t/a.opus"; $ff -i "$t/a.opus" -ar "$sr" "$out";;
    opus_16v|opus_12v) local b=${a#opus_}; b=${b%v}
      $ff -i "$in" -ac 1 -c:a libopus -b:a ${b}k -application voip "$t/a.opus"; $ff -i "$t/a.opus" -ar "$sr" "$out";;
    opus16v_mp3_128) $ff -i "$in" -ac 1 -c:a libopus -b:a 16k -application voip "$t/a.opus"
      $ff -i "$t/a.opus" -c:a libmp3lame -b:a 128k "$t/b.mp3"; $ff -i "$t/b.mp3" -ar "$sr" "$out";;
    vorbis_64) $ff -i "$in" -ar 44100 -c:a libvorbis -b:a 64k "$t/a.ogg"; $ff -i "$t/a.ogg" -ar "$sr" "$out";;  # libvorbis has no 64k mode at 8 kHz
    rs8k|rs16k|rs22k|rs48k) local r=${a#rs}; r=${r%k}; [ "$r" = 22 ] && r=22.05
      sox "$in" -r ${r}k "$t/a.wav"; sox "$t/a.wav" -r "$sr" "$out";;
    phone) sox "$in" -r 8000 -c 1 "$t/a.wav" sinc 300-3400; sox "$t/a.wav" -r "$sr" "$out";;
    amr) sox "$in" -r 8000 -c 1 -t amr-nb -C 7 "$t/a.amr"; sox "$t/a.amr" -r "$sr" "$out";;
    gsm) sox "$in" -r 8000 -c 1 -t gsm "$t/a.gsm"; sox -t gsm -r 8000 -c 1 "$t/a.gsm" -e signed-integer -b 16 -r "$sr" "$out";;
    noise20|pink20) local kind=whitenoise; [ $a = pink20 ] && kind=pinknoise
      local rms; rms=$(sox "$in" -n stat 2>&1 | awk '/RMS     amplitude/{print $3}')
      sox "$in" "$t/n.wav" synth $kind vol 1; local nrms; nrms=$(sox "$t/n.wav" -n stat 2>&1 | awk '/RMS     amplitude/{print $3}')
      sox "$in" "$t/n2.wav" synth $kind vol "$(python3 -c "print($rms*0.1/$nrms)")"
      sox -m -v 1 "$in" -v 1 "$t/n2.wav" "$out";;
    gain_p10) sox "$in" "$out" vol 10dB 2>/dev/null;;
    gain_m10) sox "$in" "$out" vol -10dB;;
    speed105) sox "$in" "$out" speed 1.05 rate "$sr";;
    speed95) sox "$in" "$out" speed 0.95 rate "$sr";;
    tempo105) sox "$in" "$out" tempo 1.05;;
    tempo95) sox "$in" "$out" tempo 0.95;;
    pitch100) sox "$in" "$out" pitch 100 rate "$sr";;
    pitchm100) sox "$in" "$out" pitch -100 rate "$sr";;
    *) echo "unknown attack $a" >&2; exit 2;;
  esac
}

files=("$@")
[ ${#files[@]} -gt 0 ] || files=("$corpus"/*.wav "$corpus"/*.flac)
for f in "${files[@]}"; do
  [ -f "$f" ] || f="$corpus/$f"
  base=$(basename "$f"); base=${base%.*}
  dur=$(soxi -D "$f")
  if python3 -c "import sys; sys.exit(0 if float('$dur') >= $len else 1)"; then :; else continue; fi
  if ! $tm embed "$f" "$work/m.wav" --key "$work/k.key" --payload 0123456789abcdef >/dev/null 2>"$work/err"; then
    echo "$base: embed refused: $(cat "$work/err")"; continue
  fi
  line="$base:"
  for a in $attacks; do
    if ! attack "$work/m.wav" "$work/a.wav" "$a" 2>/dev/null; then
      line="$line $a=n/a"; continue  # e.g. no 64 kbit/s Vorbis mode at 8 kHz
    fi
    adur=$(soxi -D "$work/a.wav")
    st=$(python3 -c "import random; random.seed('$base/$a'); print(random.uniform(0, max(0.0, float('$adur') - $len)))")
    sox "$work/a.wav" "$work/c.wav" trim "$st" "$len" 2>/dev/null
    # extract exits 3 when nothing is found; that is a result, not a failure.
    r=$( ($tm extract "$work/c.wav" --key "$work/k.key" --json 2>/dev/null || true) | python3 -c "
import sys, json
try:
    d = json.load(sys.stdin)
except ValueError:
    print('error'); sys.exit(0)
print('OK' if d['payload'] == '0123456789abcdef' else ('WRONG' if d['found'] else 'no(%.1f)' % d['best_pilot_z']))")
    line="$line $a=$r"
  done
  echo "$line"
done
