#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60), one after another,
# from the committed seed corpus in fuzz/corpus/<target>. New inputs that
# reach new code are kept in a scratch corpus (not in the repository); a
# crash stops the run and leaves its input in fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Installs cargo-fuzz when it is missing. There is no nightly
# toolchain here, so the targets build without sanitizers (`-s none`):
# libFuzzer's coverage guidance still works; panics, aborts, hangs and
# out-of-memory are what is caught.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz" >&2
    cargo install --quiet --locked cargo-fuzz@0.13.2
fi
scratch=${FUZZ_SCRATCH:-$(mktemp -d)}
cargo fuzz build -s none >/dev/null
for target in "${targets[@]}"; do
    mkdir -p "$scratch/$target"
    echo "fuzzing $target for $seconds s"
    cargo fuzz run -s none "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 2>&1 | grep -E "^(stat::|#[0-9]+ +DONE|==[0-9]+==|SUMMARY|INFO: Running with)" || true
    shopt -s nullglob
    failing=("artifacts/$target"/crash-* "artifacts/$target"/timeout-* "artifacts/$target"/oom-* "artifacts/$target"/leak-*)
    shopt -u nullglob
    if [ ${#failing[@]} -gt 0 ]; then
        echo "fuzz/${failing[0]}: $target fails on this input" >&2
        exit 1
    fi
done
