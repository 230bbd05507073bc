#!/usr/bin/env python3
"""Transparency of the mark on every corpus recording: embeds with a fixed
key, then reports tracemark's SNR, ITU-T P.862 PESQ (narrow-band at 8 kHz,
wide-band at 16 kHz) and ViSQOL v3 in audio mode (48 kHz, first 15 s; music
and noise only, where PESQ does not apply) of the marked copy against the
original. ViSQOL's score for a file against itself is printed beside it: that
is the ceiling.

PESQ is a speech measure; it is printed for music too, marked as such, but
only the speech figures mean what PESQ claims. Requires: sox, and the PyPI
packages pesq, numpy, soundfile, visqol-python
(`pip install pesq numpy soundfile visqol-python`).

Usage: scripts/quality.py CORPUS_DIR [TRACEMARK_BINARY]
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import soundfile
from pesq import pesq


def mono_at(path, rate, out):
    subprocess.run(["sox", path, "-c", "1", "-r", str(rate), "-b", "16", out], check=True,
                   stderr=subprocess.DEVNULL)
    data, _ = soundfile.read(out, dtype="float32")
    return data


def main():
    corpus = sys.argv[1]
    binary = sys.argv[2] if len(sys.argv) > 2 else "target/release/tracemark"
    work = tempfile.mkdtemp()
    key = os.path.join(work, "k.key")
    subprocess.run([binary, "keygen", key], check=True, stdout=subprocess.DEVNULL)
    from visqol import VisqolApi
    visqol = VisqolApi()
    visqol.create(mode="audio")
    print("| file | SNR dB | PESQ NB (8 kHz) | PESQ WB (16 kHz) | ViSQOL audio (self) |")
    print("|---|---|---|---|---|")
    for name in sorted(os.listdir(corpus)):
        if not name.endswith((".wav", ".flac")):
            continue
        src = os.path.join(corpus, name)
        marked = os.path.join(work, "m.wav")
        run = subprocess.run([binary, "embed", src, marked, "--key", key, "--payload",
                              "0123456789abcdef", "--json"], capture_output=True, text=True)
        if run.returncode != 0:
            print(f"| {name} | refused: {run.stderr.strip()} | | | |")
            continue
        snr = json.loads(run.stdout)["snr_db"]
        scores = []
        for rate, mode in ((8000, "nb"), (16000, "wb")):
            ref = mono_at(src, rate, os.path.join(work, "r.wav"))
            deg = mono_at(marked, rate, os.path.join(work, "d.wav"))
            # P.862 is specified for 8–30 s; its reference code crashes on minutes.
            n = min(len(ref), len(deg), 30 * rate)
            try:
                scores.append("%.2f" % pesq(rate, ref[:n], deg[:n], mode))
            except Exception as e:  # PESQ refuses signals it finds no speech in
                scores.append("n/a (%s)" % type(e).__name__)
        speech = name.startswith("speech") or name.startswith("long_call")
        kind = "" if speech else " (not speech)"
        audio_score = ""
        if not speech:
            ref = os.path.join(work, "r48.wav")
            deg = os.path.join(work, "d48.wav")
            for path, out in ((src, ref), (marked, deg)):
                subprocess.run(["sox", path, "-c", "1", "-r", "48000", "-b", "16", out,
                                "trim", "0", "15"], check=True, stderr=subprocess.DEVNULL)
            audio_score = "%.2f (%.2f)" % (visqol.measure(ref, deg).moslqo,
                                           visqol.measure(ref, ref).moslqo)
        print(f"| {name}{kind} | {snr:.1f} | {scores[0]} | {scores[1]} | {audio_score} |", flush=True)


if __name__ == "__main__":
    main()
