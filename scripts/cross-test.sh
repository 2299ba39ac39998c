#!/usr/bin/env bash
# Builds cctoken for 64-bit and 32-bit ARM Linux and runs the whole test suite (unit, integration,
# doctests) there, under qemu user-mode emulation:
#
#   bash scripts/cross-test.sh                                # both targets
#   bash scripts/cross-test.sh armv7-unknown-linux-gnueabihf  # one
#   SIZES=1 bash scripts/cross-test.sh                        # also fetch_token's size, profile min
#   SIZES=only bash scripts/cross-test.sh                     # only that (any target, the host's too)
#
# rustup cannot download targets on our machines, so std is built from source (-Zbuild-std) with
# Debian's rustc-web (scripts/debian-rust.sh); Debian's cross gcc links and qemu-user-static runs the
# tests. Missing Debian packages are installed (needs root or sudo). Nothing here changes ordinary
# cargo use: the toolchain, linkers and runners are set in this script's environment only, and
# builds go to $CROSS_TARGET_DIR (default target/cross) with their own CARGO_HOME there.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)
PACKAGES=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
    qemu-user-static)

log() { echo "cross-test: $*" >&2; }
die() { log "$*"; exit 1; }
start=$SECONDS
source scripts/debian-rust.sh

# 1. Debian packages.
ensure_packages "${DEBIAN_RUST_PACKAGES[@]}" "${PACKAGES[@]}"

# 2. Debian's toolchain, in this script's environment only.
use_debian_rust

export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64-static -L /usr/aarch64-linux-gnu"
export CC_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-gcc
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=arm-linux-gnueabihf-gcc
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUNNER="qemu-arm-static -L /usr/arm-linux-gnueabihf"

# 3. Build and test each target. `cargo test --target` builds the fetch_token binary for the target
# too, and CCTOKEN_TEST_TARGET tells the tests that run it (tests/cli.rs, tests/hostile.rs) to run
# it through cargo's runner for that target, as the tests themselves are run.
runner_var() { echo "CARGO_TARGET_$(tr 'a-z-' 'A-Z_' <<<"$1")_RUNNER"; }
elf_machine() { LC_ALL=C readelf -h "$1" | sed -n 's/^ *Machine: *//p'; }
expected_machine() { case $1 in aarch64-*) echo AArch64 ;; arm*) echo ARM ;; *) echo "?" ;; esac; }
# "unit U, integration I, doc D passed; N ignored" from cargo test's log.
count_tests() {
    awk '/Running unittests/ { kind = "unit" } /Running tests\// { kind = "integration" } /Doc-tests/ { kind = "doc" }
        /^test result: ok\./ { n[kind] += $4; ignored += $8 }
        END { printf "unit %d, integration %d, doc %d passed (%d in all); %d ignored",
              n["unit"], n["integration"], n["doc"], n["unit"] + n["integration"] + n["doc"], ignored }' "$1"
}
summary=()
for target in "${TARGETS[@]}"; do
    if [[ ${SIZES:-} != only ]]; then
        runner=$(runner_var "$target")
        [[ -n ${!runner:-} ]] || die "no qemu runner for $target in this script"
        export CCTOKEN_TEST_TARGET=$target
        log "$target: cargo test (std built from source on the first run)"
        t0=$SECONDS
        out=$CARGO_TARGET_DIR/test-$target.log
        # One test at a time: qemu-user can deadlock a child between fork and exec when other guest
        # threads are busy (seen once here: a fetch_token spawn hung for 15 minutes), and a bound
        # on the whole run, so that a hang fails the script instead of running forever.
        if ! RUST_TEST_THREADS=1 timeout "${CROSS_TEST_TIMEOUT:-1800}" \
            "$cargo" test --locked -Zbuild-std --target "$target" 2>&1 | tee "$out"; then
            die "$target: tests failed (log: $out)"
        fi
        # The fetch_token the tests ran (CARGO_BIN_EXE_fetch_token) must be the target's, not one
        # built for the host.
        binary=$CARGO_TARGET_DIR/$target/debug/fetch_token
        [[ $(elf_machine "$binary") == $(expected_machine "$target") ]] ||
            die "$target: $binary is not a $target binary: the tests ran a host binary"
        summary+=("$target: $(count_tests "$out"), in $((SECONDS - t0)) s")
    fi
    if [[ -n ${SIZES:-} ]]; then
        # panic = "abort" needs std's panic_abort built too. Unlike a rustup target's prebuilt std,
        # std is built in this profile as well.
        log "$target: fetch_token in profile min"
        for features in default-features no-webpki-roots; do
            flags=()
            [[ $features == no-webpki-roots ]] && flags=(--no-default-features --features ureq)
            "$cargo" build --locked --quiet -Zbuild-std=std,panic_abort --target "$target" --profile min \
                --bin fetch_token "${flags[@]}"
            bytes=$(stat -c %s "$CARGO_TARGET_DIR/$target/min/fetch_token")
            summary+=("$target: fetch_token ($features), profile min, stripped: $bytes B = $(
                awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1024 }') KiB")
        done
    fi
done
printf '%s\n' "${summary[@]}"
log "done in $((SECONDS - start)) s"
