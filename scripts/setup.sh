#!/usr/bin/env bash
# Installs what earmark needs on a fresh Debian machine (run as root or with
# sudo available): the Rust build's C dependencies and the real codecs the
# tests and the demo damage audio with. Idempotent; quick when all is present.
set -euo pipefail

bash "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" \
  ffmpeg sox libsox-fmt-all libopus-dev pkg-config cmake build-essential

if ! command -v cargo >/dev/null 2>&1; then
  for c in "$HOME/.cargo/bin/cargo" /usr/local/cargo/bin/cargo; do
    [ -x "$c" ] && export PATH="$(dirname "$c"):$PATH" && break
  done
fi
command -v cargo >/dev/null 2>&1 || {
  echo "setup: no Rust toolchain found; install one with rustup (https://rustup.rs), Rust 1.94 or newer" >&2
  exit 1
}

# The test runner: every test in its own process, under a clock.
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest" >&2
  cargo install --quiet --locked cargo-nextest@0.9.143
fi

# Perceptual scores for `earmark bench --perceptual` (ViSQOL v3, PESQ) and
# the `room` attack's rooms (pyroomacoustics) come from their PyPI
# packages, in a virtual environment of their own:
#   --perceptual  all of them (for the benchmarks);
#   --rooms       pyroomacoustics alone (for the tests' re-recording gate).
# Prints the interpreter to use (export it as EARMARK_PYTHON).
case "${1:-}" in
  --perceptual)
    check='import pesq, numpy, soundfile, visqol, pyroomacoustics'
    wanted=(pesq numpy soundfile "visqol-python[lattice,accel]" pyroomacoustics) ;;
  --rooms)
    check='import numpy, soundfile, pyroomacoustics'
    wanted=(numpy soundfile pyroomacoustics) ;;
  *) check='' ;;
esac
if [ -n "$check" ]; then
  if python3 -c "$check" 2>/dev/null; then
    python=$(command -v python3)
  else
    venv="${XDG_CACHE_HOME:-$HOME/.cache}/earmark/perceptual-venv"
    if [ ! -x "$venv/bin/python" ]; then
      python3 -m venv "$venv" 2>/dev/null || {
        SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get install -y -qq --no-install-recommends python3-venv python3-dev >/dev/null
        python3 -m venv "$venv"
      }
    fi
    if ! "$venv/bin/python" -c "$check" 2>/dev/null; then
      "$venv/bin/python" -m pip install -q --upgrade pip >&2
      "$venv/bin/python" -m pip install -q "${wanted[@]}" >&2
    fi
    "$venv/bin/python" -c "$check"
    python="$venv/bin/python"
  fi
  echo "setup: rooms and perceptual scores use $python" >&2
  echo "$python"
fi
