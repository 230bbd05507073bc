#!/usr/bin/env bash
# Builds the reference marker, audiowmark, outside the repository, for the
# side-by-side figures of `earmark bench --external` (docs/reference.md).
# audiowmark is not packaged for Debian and is never vendored here: this
# script checks out its public source at a release tag, builds it with
# Debian's -dev packages, and prints the path of the binary.
#
#   scripts/build-audiowmark.sh [SOURCE]
#
# SOURCE is a git repository of audiowmark, a URL or a local path
# (default https://github.com/swesterfeld/audiowmark). The build lives in
# ${XDG_CACHE_HOME:-~/.cache}/earmark/audiowmark-0.6.5; a second run reuses it.
set -euo pipefail

tag=0.6.5
source=${1:-https://github.com/swesterfeld/audiowmark}
home="${XDG_CACHE_HOME:-$HOME/.cache}/earmark/audiowmark-$tag"
binary="$home/src/audiowmark"

if [ ! -x "$binary" ]; then
  bash "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" \
    libfftw3-dev libsndfile1-dev libgcrypt20-dev libzita-resampler-dev libmpg123-dev \
    autoconf-archive autoconf automake libtool g++ make git pkg-config
  rm -rf "$home"
  mkdir -p "$(dirname "$home")"
  echo "build-audiowmark: checking out $tag from $source" >&2
  git clone -q "$source" "$home"
  git -C "$home" -c advice.detachedHead=false checkout -q "$tag"
  (
    cd "$home"
    ./autogen.sh >/dev/null 2>&1 || autoreconf -fi >/dev/null
    ./configure -q >/dev/null
    make -s -j"$(nproc)" >/dev/null
  ) || { echo "build-audiowmark: the build failed in $home" >&2; exit 1; }
fi
"$binary" --version >/dev/null 2>&1 || "$binary" -h >/dev/null 2>&1 || {
  echo "build-audiowmark: $binary does not run" >&2
  exit 1
}
echo "$binary"
