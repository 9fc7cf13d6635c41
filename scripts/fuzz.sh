#!/usr/bin/env bash
# Fuzzes Lathe's input parsers for SECS seconds per target (default 180), gently (nice).
#   scripts/fuzz.sh [SECS] [TARGET...]     targets: table annotations project audio image
# With cargo-fuzz installed (cargo install cargo-fuzz) it runs the libFuzzer targets in fuzz/
# (nightly features through RUSTC_BOOTSTRAP=1 on the stable toolchain); otherwise the same entry
# points run under the stable mutation driver (engine/tests/fuzz_inputs.rs). Crashes are saved
# under fuzz/artifacts/<target>/ (libFuzzer) or $TMPDIR/lathe-fuzz-crash-<target> (driver).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-180}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(table annotations project audio image)

if cargo fuzz --version >/dev/null 2>&1; then
    for t in "${targets[@]}"; do
        mkdir -p "fuzz/corpus/$t"
        cp -n fuzz/seeds/"$t"/* "fuzz/corpus/$t/" 2>/dev/null || true
        RUSTC_BOOTSTRAP=1 nice -n 10 cargo fuzz run "$t" "fuzz/corpus/$t" -- \
            -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>&1 |
            grep -E "stat::number_of_executed_units|Done|ERROR|SUMMARY" || true
    done
else
    echo "cargo-fuzz not found: running the stable mutation driver" >&2
    for t in "${targets[@]}"; do
        LATHE_FUZZ_SECS="$secs" LATHE_FUZZ_ONLY="$t" nice -n 10 cargo test -p lathe-engine \
            --test fuzz_inputs -- --nocapture 2>&1 | grep -E "^fuzz |panicked|FAILED" || true
    done
fi
