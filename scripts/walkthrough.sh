#!/usr/bin/env bash
# Runs README.md's "Five minutes with earmark" as a reader would: each of
# its shell blocks in turn, in one shell, starting at the repository's root
# (the first block moves to a scratch directory of its own). Before each
# block's output it prints a line `=== block N`, and at the end
# `=== scratch DIR`, so that a test can hold the README's shown output to
# what the commands print. The scratch directory is removed afterwards.
#
#   scripts/walkthrough.sh        # earmark from PATH, or EARMARK_BIN=path/to/earmark
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -n "${EARMARK_BIN:-}" ]; then
    mkdir -p "$work/bin"
    ln -s "$EARMARK_BIN" "$work/bin/earmark"
    PATH="$work/bin:$PATH"
fi
if ! command -v earmark >/dev/null; then
    echo "walkthrough: earmark is not on PATH (cargo install --locked --path crates/earmark-cli, or set EARMARK_BIN)" >&2
    exit 8
fi
# The shell blocks of the section, one file each.
awk -v dir="$work" '
    /^## / { inside = ($0 == "## Five minutes with earmark") }
    inside && /^```sh$/ { n++; file = dir "/block-" n ".sh"; grab = 1; next }
    grab && /^```$/ { grab = 0; next }
    grab { print > file }
' "$repo/README.md"
cd "$repo"
n=1
while [ -f "$work/block-$n.sh" ]; do
    echo "=== block $n"
    # shellcheck disable=SC1090
    source "$work/block-$n.sh" 2>&1
    n=$((n + 1))
done
echo "=== scratch $PWD"
case "$PWD" in
    /tmp/*) trap 'rm -rf "$work" "$PWD"' EXIT ;;
esac
