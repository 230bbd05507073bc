#!/usr/bin/env bash
# The main job on a bundled recording: make a key, mark the recording, damage
# the marked copy the way a leak would (MP3 at 64 kbit/s, then a 10-second
# excerpt), and read the mark back.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release -q -p earmark-cli
tm=target/release/earmark
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

echo
echo "== tracing a leak to its recipient: a home, three recipients, a 6-minute call marked for each"
export EARMARK_HOME="$work/home"
call=tests/fixtures/long/long_call_en-f_it-m_8k.flac
printf 'name,email,org\nAna Lima,ana@example.org,Daily\nBo Berg,bo@example.org,Weekly\nCy Diaz,cy@example.org,Radio\n' > "$work/people.csv"
$tm init
$tm recipient import "$work/people.csv"
$tm mark "$call" --all --out "$work/copies" --title "Board call"
echo "== leak: 30 s of Bo Berg's copy, 2 s of another recording spliced in, slowed 5 % (pitch kept), through AMR-NB 4.75 kbit/s"
sox -R "$work/copies/long_call_en-f_it-m_8k.r2-Bo_Berg.wav" "$work/a.wav" trim 120 14
sox -R "$work/copies/long_call_en-f_it-m_8k.r2-Bo_Berg.wav" "$work/b.wav" trim 134 16
sox -R tests/fixtures/speech_cs_mf_22k_fillets_kitchen_dialogue.wav -r 8000 -c 1 "$work/other.wav" trim 5 2
sox -R "$work/a.wav" "$work/other.wav" "$work/b.wav" "$work/spliced.wav" tempo 0.95
sox -R "$work/spliced.wav" -t amr-nb -C 0 "$work/leak.amr"
sox -R "$work/leak.amr" "$work/leak.wav"
mkdir -p demo-out
echo "== trace (the master is in the home, so the leak is registered against it)"
$tm trace "$work/leak.wav" --plot demo-out/tamper-map.png
echo "tamper map drawn to demo-out/tamper-map.png"

echo
echo "== transcript canaries: the same three recipients get their own variant of the Asterisk prompt transcript"
transcript=tests/fixtures/transcripts/asterisk-core-sounds-en.txt
$tm text check "$transcript" --variants 16
$tm text mark "$transcript" --all --out "$work/transcripts" --title "Prompt transcript"
diff "$work/transcripts/asterisk-core-sounds-en.r1-Ana_Lima.txt" "$work/transcripts/asterisk-core-sounds-en.r2-Bo_Berg.txt" | head -8 || true
echo "== leak: an article quoting 1,500 words of Bo Berg's transcript, retyped in lower case with typographic apostrophes"
{
  echo "The recordings, which this newspaper has seen, walk callers through the menus. They say:"
  sed 's/^[^:]*: //' "$work/transcripts/asterisk-core-sounds-en.r2-Bo_Berg.txt" | tr '\n' ' ' | tr -s ' ' \
    | cut -d' ' -f400-1900 | tr '[:upper:]' '[:lower:]' | sed "s/'/’/g"
  echo "The company did not respond to a request for comment."
} > "$work/article.txt"
$tm text trace "$work/article.txt"
