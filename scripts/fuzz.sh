#!/usr/bin/env bash
# libFuzzer runs of eagate's fuzz targets (fuzz/, invariants in crates/fuzzing).
#
#   scripts/fuzz.sh run [TARGET|all] [SECONDS]   long runs (`just fuzz`)
#   scripts/fuzz.sh smoke                        CI: signed_request and jwt, briefly
#
# cargo-fuzz needs nightly-only rustc flags (-Z sanitizer coverage options);
# on the stable toolchain RUSTC_BOOTSTRAP=1 allows them. cargo-fuzz is
# installed from crates.io when missing (about a minute, once per machine).
# Runs use no sanitizer by default (eagate's crates forbid unsafe code);
# FUZZ_SANITIZER=address adds AddressSanitizer. A run grows its corpus in
# fuzz/corpus/<target>/ (not committed) from fuzz/seeds/<target>/ (committed);
# a failing input is written to fuzz/artifacts/<target>/: reproduce it with
# `scripts/fuzz.sh repro TARGET FILE`, fix the bug, add a regression test in
# the crate where the bug lives and copy the input into fuzz/seeds/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=(signed_request json_bodies jwt cursor_query)
CARGO_FUZZ_VERSION=0.13.2
export RUSTC_BOOTSTRAP=1

ensure_cargo_fuzz() {
    if cargo fuzz --version >/dev/null 2>&1; then
        return
    fi
    echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION (once per machine)"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --quiet
}

run_target() {
    local target=$1 seconds=$2
    shift 2
    mkdir -p "fuzz/corpus/$target"
    echo "==> fuzz $target for ${seconds}s"
    cargo fuzz run --fuzz-dir fuzz -s "${FUZZ_SANITIZER:-none}" "$@" "$target" \
        "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 2>&1 |
        grep -Ev '^#[0-9]+\s+(NEW|REDUCE|pulse)' || return "${PIPESTATUS[0]}"
}

case "${1:-run}" in
run)
    target=${2:-all}
    seconds=${3:-300}
    ensure_cargo_fuzz
    # Optimised, 16 codegen units: builds much faster than cargo-fuzz's
    # default of one, runs nearly as fast.
    if [ "$target" = all ]; then
        for t in "${TARGETS[@]}"; do run_target "$t" "$seconds" --codegen-units 16; done
    else
        run_target "$target" "$seconds" --codegen-units 16
    fi
    ;;
smoke)
    # The two targets whose dependencies are light (protocol, crypto,
    # domain), built without optimisation: a build from nothing fits CI's
    # budget, which the server's dependency tree would not. json_bodies and
    # cursor_query run their checks without libFuzzer in `cargo test`
    # (crates/fuzzing/tests/smoke.rs), over the same seeds.
    seconds=${FUZZ_SMOKE_SECONDS:-20}
    ensure_cargo_fuzz
    for t in signed_request jwt; do
        run_target "$t" "$seconds" --dev --no-default-features
    done
    ;;
repro)
    target=${2:?target} file=${3:?input file}
    ensure_cargo_fuzz
    cargo fuzz run --fuzz-dir fuzz -s "${FUZZ_SANITIZER:-none}" "$target" "$file"
    ;;
*)
    echo "usage: scripts/fuzz.sh run [TARGET|all] [SECONDS] | smoke | repro TARGET FILE" >&2
    exit 2
    ;;
esac
