#!/usr/bin/env bash
# Brings fuzz/Cargo.lock in line with the workspace's Cargo.lock: fuzzing
# then builds the versions the product ships. Starts from the workspace's
# lock and lets cargo add libfuzzer-sys and drop what the fuzz workspace
# does not use; nothing else is upgraded.
set -euo pipefail
cd "$(dirname "$0")/.."
cp Cargo.lock fuzz/Cargo.lock
cargo metadata --quiet --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null
echo "fuzz/Cargo.lock now follows Cargo.lock"
